"""`echoic tokenize PATH... --tokenizer DIR --out tokens.parquet`: audio files → token sequences.

The frames come from the model, layer and input kind the tokenizer was fit on (its
``tokenizer.json``), unless ``--model`` / ``--layer`` say otherwise. ``--dedup`` collapses runs of
identical tokens (run lengths kept). Prints tokens/s and bits/s per file and overall, and writes
them per file to ``<out stem>.rates.csv``. Resumable and fault-tolerant like ``echoic embed``
(:mod:`echoic.embed.tokenize`); SIGTERM stops like Ctrl-C, keeping what is written.
Fit a tokenizer first: ``echoic tokenizer fit`` (:mod:`echoic.cli.tokenizer`).
"""

from __future__ import annotations

import argparse
import signal

from echoic.cli.embed import _stop_on_sigterm, parse_layer


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tokenize",
        help="audio files or folders → token sequences (Parquet) with a fitted tokenizer",
        description="Tokenize audio with a tokenizer fit by `echoic tokenizer fit`; prints "
        "tokens/s and bits/s per file and overall.",
    )
    p.add_argument("paths", nargs="+", help="audio files and/or folders (walked recursively)")
    p.add_argument(
        "--tokenizer", required=True, help="a tokenizer directory (echoic tokenizer fit)"
    )
    p.add_argument(
        "--model", default=None, help="model (default: the one the tokenizer was fit on)"
    )
    p.add_argument(
        "--layer", type=parse_layer, default=None, help="layer (default: the tokenizer's)"
    )
    p.add_argument("--out", required=True, help="output .parquet file (re-runs resume it)")
    p.add_argument("--dedup", action="store_true", help="collapse runs of identical tokens")
    p.add_argument("--max-duration-s", type=float, default=None, help="skip longer files")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from echoic.embed.token_frames import recorded_source
    from echoic.embed.tokenize import tokenize_files
    from echoic.tokenizers import load_tokenizer

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer = load_tokenizer(args.tokenizer).eval()
    source = recorded_source(tokenizer.source, args.model, args.layer)
    recorded = tokenizer.source.get("model_identity")
    if recorded and recorded != source.embedder.identity:
        print(
            f"note: the tokenizer was fit on frames of {tokenizer.source.get('model')!r} "
            f"(layer {tokenizer.source.get('layer')}); tokenizing frames of "
            f"{source.embedder.label!r} (layer {source.layer})"
        )
    print(
        f"tokenizer: {tokenizer.name} ({'+'.join(map(str, tokenizer.codebook_sizes))} codes, "
        f"{tokenizer.bits_per_frame:.1f} bits/frame) on {source.input} frames of "
        f"{source.embedder.label}, layer {source.layer}, hop {source.hop_ms:g} ms"
    )
    report = tokenize_files(
        args.paths,
        args.out,
        source,
        tokenizer,
        dedup=args.dedup,
        max_duration_s=args.max_duration_s,
        progress=not args.quiet,
    )
    print(report.summary())
    return 0
