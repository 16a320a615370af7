"""`echoic embed PATH... --out emb.parquet`: embeddings of audio files into Parquet.

``--model`` takes anything ``echoic.zoo.resolve_model`` does: an echoic model name or directory, a
baseline or peer name (``echoic models`` lists them), or a fitted ``bow`` directory.
``--device cuda`` runs the model on a GPU; ``--engine ray`` spreads the files over Ray workers
(:mod:`echoic.embed.ray_extract`, ``pip install 'echoic[ray]'``) with the same output and resume.
SIGTERM stops like Ctrl-C: the rows already embedded are written, and a re-run goes on from there.
"""

from __future__ import annotations

import argparse
import signal
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from echoic.embed.base import EmbeddingModel

from echoic.model_format import DEFAULT_MODEL


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
    p.add_argument(
        "--device",
        default=None,
        help="where the model runs: cpu (default), cuda, cuda:N or auto; outputs are identical "
        "up to float rounding (with --engine ray: set by --gpus-per-worker)",
    )
    p.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this process (default); ray: Ray Data workers (pip install 'echoic[ray]')",
    )
    p.add_argument(
        "--address",
        default=None,
        help="ray: the cluster to join ('auto': the one this machine belongs to; default: start "
        "a local Ray)",
    )
    p.add_argument(
        "--num-workers", type=int, default=2, help="ray: workers, each holding the model"
    )
    p.add_argument(
        "--gpus-per-worker",
        type=float,
        default=0.0,
        help="ray: GPUs per worker (e.g. 1 or 0.5); > 0 embeds on CUDA",
    )
    p.add_argument("--max-duration-s", type=float, default=None, help="skip longer files")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def build_model(name: str, options: dict[str, object], device: str) -> EmbeddingModel:
    """The model ``name`` on ``device`` (a Ray worker's factory: importable, so picklable)."""
    from echoic.zoo.registry import resolve_model

    return resolve_model(name, **options, device=device)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C: finished rows are written first


def run(args: argparse.Namespace) -> int:
    import torch

    from echoic.embed.extract import extract
    from echoic.zoo.registry import resolve_model

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
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
    if args.engine == "ray":
        return _run_ray(args, opts)
    if args.device is not None:
        opts["device"] = args.device
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


def _run_ray(args: argparse.Namespace, opts: dict[str, object]) -> int:
    from functools import partial

    from echoic.embed.ray_extract import RayConfig, extract_ray

    config = RayConfig(
        address=args.address, num_workers=args.num_workers, gpus_per_worker=args.gpus_per_worker
    )
    if args.threads:
        config.cpus_per_worker = float(args.threads)
    print(
        f"model: {args.model} on {config.num_workers} Ray worker(s) "
        f"({config.worker_device(args.device)}, {config.gpus_per_worker:g} GPU each)"
    )
    report = extract_ray(
        args.paths,
        args.out,
        partial(build_model, args.model, opts),
        timestamps=args.timestamps,
        max_duration_s=args.max_duration_s,
        config=config,
        device=args.device,
        progress=not args.quiet,
    )
    print(report.summary())
    return 0
