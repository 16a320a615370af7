"""`echoic embed PATH... --out emb.parquet`: embeddings of audio files into Parquet.

``--model`` takes anything ``echoic.zoo.resolve_model`` does: an echoic model name or directory, a
baseline or peer name (``echoic models`` lists them), or a fitted ``bow`` directory.
"""

from __future__ import annotations

import argparse

from echoic.checkpoint import DEFAULT_MODEL


def parse_layer(text: str) -> int | str | tuple[float, ...]:
    """'-1' → -1, 'mean' → 'mean', '0.5,0.5,...' → weights."""
    if text == "mean":
        return text
    if "," in text:
        return tuple(float(v) for v in text.split(","))
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--layer expects an index (e.g. -1), 'mean', or comma-separated weights; found {text!r}"
        ) from None


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("embed", help="embed audio files or folders into a Parquet file")
    p.add_argument("paths", nargs="+", help="audio files and/or folders (walked recursively)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="model name or directory")
    p.add_argument("--out", required=True, help="output .parquet file (re-runs resume it)")
    p.add_argument("--timestamps", action="store_true", help="also write timestamp embeddings")
    p.add_argument(
        "--layer", type=parse_layer, default=None, help="echoic models: index, 'mean', or weights"
    )
    p.add_argument("--chunk-s", type=float, default=None, help="seconds per encoder chunk")
    p.add_argument("--batch-size", type=int, default=None, help="chunks per forward pass")
    p.add_argument(
        "--shifts",
        type=int,
        default=None,
        help="echoic models: timestamps from this many shifted passes per time patch (e.g. 4)",
    )
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16", "int8", "auto"),
        default=None,
        help="encoder arithmetic for echoic models (default fp32; auto measures bf16 on this "
        "CPU; see docs/evaluation.md#precision)",
    )
    p.add_argument("--max-duration-s", type=float, default=None, help="skip longer files")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from echoic.embed.extract import extract
    from echoic.zoo.registry import resolve_model

    if args.threads:
        torch.set_num_threads(args.threads)
    opts: dict[str, object] = {}
    if args.layer is not None:
        opts["layer"] = args.layer
    if args.chunk_s:
        opts["chunk_s"] = args.chunk_s
    if args.batch_size:
        opts["batch_size"] = args.batch_size
    if args.shifts is not None:
        opts["shifts"] = args.shifts
    if args.precision is not None:
        opts["precision"] = args.precision
    embedder = resolve_model(args.model, **opts)
    precision = getattr(embedder, "precision", "fp32")
    print(
        f"model: {embedder.label}, {embedder.embedding_size}-d at {embedder.sample_rate} Hz"
        + (f", {precision}" if precision != "fp32" else "")
    )
    report = extract(
        args.paths,
        args.out,
        embedder,
        timestamps=args.timestamps,
        max_duration_s=args.max_duration_s,
        progress=not args.quiet,
    )
    print(report.summary())
    return 0
