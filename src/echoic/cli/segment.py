"""`echoic segment AUDIO... --out segments.parquet`: syllable-like segments of audio files.

``--method similarity`` (default) segments a model's frames by Sylber's greedy pass (one pass
over the frames: a frame joins the current segment while its cosine similarity to the segment's
mean stays ≥ ``--merge-threshold``; frames below the norm threshold are silence) and writes each
segment's times and mean embedding; ``--tokens DIR`` adds a k-means id per segment (a tokenizer
fit by ``echoic tokenizer fit``: by default the model and layer it was fit on are used).
``--method energy`` is the classical baseline: syllable nuclei from intensity peaks (de Jong &
Wempe style), no model. Resumable and fault-tolerant like ``echoic embed``
(:mod:`echoic.embed.segment_files`); SIGTERM stops like Ctrl-C, keeping what is written.
See docs/segmentation.md.
"""

from __future__ import annotations

import argparse
import signal
from typing import TYPE_CHECKING

from echoic.cli.embed import _stop_on_sigterm, parse_layer
from echoic.model_format import DEFAULT_MODEL

if TYPE_CHECKING:
    from echoic.embed.segment_files import Segmenter


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "segment",
        help="audio files or folders → syllable-like segments (Parquet): times, embeddings, tokens",
        description="Segment audio by the frame similarity of a model (Sylber's linear-time "
        "pass) or by its energy envelope (a classical syllable-nucleus baseline). See "
        "docs/segmentation.md.",
    )
    p.add_argument("paths", nargs="+", help="audio files and/or folders (walked recursively)")
    p.add_argument("--out", required=True, help="output .parquet file (re-runs resume it)")
    p.add_argument(
        "--method",
        choices=("similarity", "energy"),
        default="similarity",
        help="similarity: a model's frames (default); energy: intensity peaks, no model",
    )
    p.add_argument(
        "--model",
        default=None,
        help=f"model name or directory (default: the --tokens tokenizer's, else {DEFAULT_MODEL})",
    )
    p.add_argument(
        "--layer", type=parse_layer, default=None, help="echoic models: index, 'mean' or weights"
    )
    p.add_argument(
        "--merge-threshold",
        type=float,
        default=0.8,
        help="cosine similarity to the segment's mean a frame needs to join it (Sylber: 0.8)",
    )
    p.add_argument(
        "--norm-threshold",
        type=float,
        default=0.0,
        help="frames with a smaller L2 norm are silence (default 0: off; Sylber's model: 2.6)",
    )
    p.add_argument(
        "--relative-norm-threshold",
        type=float,
        default=0.0,
        help="silence below this fraction of the clip's median frame norm (default 0: off)",
    )
    p.add_argument(
        "--no-refine", action="store_true", help="skip the merge / boundary-refinement pass"
    )
    p.add_argument(
        "--tokens", default=None, metavar="TOKENIZER_DIR", help="add a token per segment"
    )
    p.add_argument("--silence-db", type=float, default=25.0, help="energy: dB below the loudest")
    p.add_argument("--min-dip-db", type=float, default=2.0, help="energy: dip between nuclei")
    p.add_argument(
        "--voicing-threshold",
        type=float,
        default=None,
        help="energy: keep only voiced nuclei (autocorrelation ≥ this, e.g. 0.45; default: off)",
    )
    p.add_argument("--device", default=None, help="where the model runs: cpu (default), cuda...")
    p.add_argument("--max-duration-s", type=float, default=None, help="skip longer files")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _segmenter(args: argparse.Namespace) -> Segmenter:
    from echoic.embed.nuclei import NucleiConfig
    from echoic.embed.segment import SimilarityConfig
    from echoic.embed.segment_files import EnergySegmenter, FrameSegmenter

    if args.method == "energy":
        if args.tokens or args.model:
            print("note: --method energy uses no model; --model and --tokens are ignored")
        config = NucleiConfig(
            silence_db=args.silence_db,
            min_dip_db=args.min_dip_db,
            voicing_threshold=args.voicing_threshold,
        )
        return EnergySegmenter(config)
    similarity = SimilarityConfig(
        merge_threshold=args.merge_threshold,
        norm_threshold=args.norm_threshold,
        relative_norm_threshold=args.relative_norm_threshold,
        refine=not args.no_refine,
    )
    options: dict[str, object] = {}
    if args.device is not None:
        options["device"] = args.device
    if args.tokens:
        from echoic.embed.token_frames import recorded_source
        from echoic.tokenizers import load_tokenizer

        tokenizer = load_tokenizer(args.tokens).eval()
        if tokenizer.source.get("input", "layer") != "layer":
            from echoic.errors import ConfigError

            raise ConfigError(
                f"the tokenizer in {args.tokens} reads {tokenizer.source.get('input')!r} frames; "
                "segment tokens need one fit on a model's layer (echoic tokenizer fit --input "
                "layer)."
            )
        if args.model is None:  # the frames the tokenizer was fit on
            source = recorded_source(tokenizer.source, None, args.layer)
            return FrameSegmenter(source.embedder, similarity, tokenizer)
    else:
        tokenizer = None
    from echoic.zoo.registry import resolve_model

    if args.layer is not None:
        options["layer"] = args.layer
    model = resolve_model(args.model or DEFAULT_MODEL, **options)
    return FrameSegmenter(model, similarity, tokenizer)


def run(args: argparse.Namespace) -> int:
    import torch

    from echoic.embed.segment_files import segment_files

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    if args.threads:
        torch.set_num_threads(args.threads)
    segmenter = _segmenter(args)
    print(f"segmenting with {segmenter.label} at {segmenter.loader.sample_rate} Hz")
    report = segment_files(
        args.paths,
        args.out,
        segmenter,
        max_duration_s=args.max_duration_s,
        progress=not args.quiet,
    )
    print(report.summary())
    return 0
