"""`echoic export-heareval`: cached embeddings written for hear-eval-kit's own probe runner.

    echoic export-heareval --model logmel_stats --tasks tasks/esc50-v1.0.0-full \\
        --cache results/cache --out heareval-embeddings
    python -m heareval.predictions.runner heareval-embeddings/logmel_stats/*   # hear-eval-kit

A verb of its own rather than a flag of ``echoic eval``: an export trains no probe, so eval's probe
flags (protocol, seeds, grid, device, jobs) would mean nothing for it, and it is typically run
against a cache an earlier ``echoic eval`` filled (or fills the cache so that a later ``echoic
eval --cache`` reuses exactly these vectors). Models are resolved as ``echoic eval`` resolves them,
embeddings come from (or go into) the same cache, and each (model, task) is written to
``OUT/<model>/<task folder>/`` (hear-eval-kit's ``embeddings/<module>/<task>/``). The layout:
``echoic.evaluate.heareval_export``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export-heareval",
        help="write cached embeddings in hear-eval-kit 2021.1.3's downstream layout",
        description="Embed (or read from the cache) every task with every model and write each "
        "(model, task) into OUT/<model>/<task folder>/ as hear-eval-kit's "
        "heareval.predictions.runner reads it.",
    )
    p.add_argument(
        "--model",
        action="append",
        default=[],
        help="a model name (any of `echoic models`) or model directory (repeatable)",
    )
    p.add_argument(
        "--cached-model",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="a model known only by its embeddings: DIR is <cache>/<identity>/ (repeatable)",
    )
    p.add_argument("--tasks", nargs="+", required=True, help="task dirs or folders of task dirs")
    p.add_argument(
        "--cache",
        default=None,
        help="embedding cache folder (default: results/cache, echoic eval's default; the "
        "--cached-model folders' cache when those are given)",
    )
    p.add_argument("--out", required=True, help="output folder (OUT/<model>/<task folder>/)")
    p.add_argument(
        "--order",
        choices=("heareval", "task"),
        default="heareval",
        help="row order: heareval (each split's files shuffled as hear-eval-kit's embedding step "
        "does; default) or task (split JSON order)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from echoic.embed.base import EmbeddingModel
    from echoic.errors import ConfigError
    from echoic.evaluate.cache import CachedModel, cached_model, embed_task, slug
    from echoic.evaluate.heareval_export import export_task
    from echoic.evaluate.task import find_tasks, load_task
    from echoic.zoo.registry import resolve_model

    if not args.model and not args.cached_model:
        print("echoic export-heareval: error: give --model or --cached-model", file=sys.stderr)
        return 2
    cached = [cached_model(spec) for spec in args.cached_model]
    roots = {c.cache_root.resolve() for c in cached}
    if cached and args.cache and Path(args.cache).resolve() not in roots:
        raise ConfigError(
            f"--cache {args.cache} is not the folder holding the --cached-model folders "
            f"({', '.join(sorted(str(r) for r in roots))}); leave --cache out or make them agree"
        )
    tasks = [load_task(p) for p in find_tasks(args.tasks)]
    out = Path(args.out)
    jobs: list[tuple[str, CachedModel | None]] = [(name, None) for name in args.model]
    jobs += [(c.label, c) for c in cached]
    for name, ready in jobs:
        model: EmbeddingModel | CachedModel = ready if ready is not None else resolve_model(name)
        cache = ready.cache_root if ready is not None else Path(args.cache or "results/cache")
        identity = model.identity
        for task in tasks:
            emb = embed_task(model, task, cache, identity, progress=not args.quiet)
            target = out / slug(str(name)) / task.path.name
            done = export_task(task, emb, target, order=args.order, identity=identity)
            rows = sum(s.rows for s in done.splits.values())
            dims = next(iter(done.splits.values())).dims
            print(f"{name} · {task.name}: {rows} rows × {dims} dims → {target}")
    return 0
