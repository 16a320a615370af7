"""The HEAR probe of one task run three ways, side by side in one run:

- ``grid``: the whole grid search of fold 0 in one unit (all grid points x seeds stacked: what
  echoic did before units, and still does on a GPU);
- ``points``: one unit per grid point (the CPU default; each unit is kept when it finishes, so a
  stopped run resumes);
- ``jobs=N``: the same units in N worker processes of one thread each (``echoic eval --jobs N``).

All three train with one torch thread per process. Printed: wall and CPU seconds of each (CPU
includes the workers'), the ratios to ``grid``, and how far the test scores of the three runs are
apart (a probe does not depend on its stack mates, up to float rounding).

Run::

    .venv/bin/python benchmarks/bench_probe_units.py --tasks TASKS_DIR --task drums \\
        --model echoic-tiny --cache results/cache --jobs 2
"""

from __future__ import annotations

import argparse
import os
import resource
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch

from echoic.evaluate.cache import embed_task
from echoic.evaluate.probes import ProbeConfig, run_probe
from echoic.evaluate.task import find_tasks, load_task
from echoic.zoo.registry import resolve_model


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tasks", required=True, help="folder of built tasks (echoic tasks build)")
    p.add_argument("--task", default="drums")
    p.add_argument("--model", default="echoic-tiny")
    p.add_argument("--cache", default="results/cache", help="embedding cache (echoic eval's)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--max-epochs", type=int, default=None, help="cap (default: the protocol's)")
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(1)

    [task_dir] = [d for d in find_tasks([args.tasks]) if load_task(d).name == args.task]
    task = load_task(task_dir)
    model = resolve_model(args.model)
    emb = embed_task(model, task, args.cache, progress=True)
    config = ProbeConfig(protocol="hear", seeds=args.seeds, max_epochs=args.max_epochs)
    print(
        f"task {task.name}: {len(task.fold_plans())} fold plans; model {model.label}; "
        f"{config.grid_points} grid points x {args.seeds} seeds on fold 0; max epochs "
        f"{args.max_epochs or 500}; {os.cpu_count()} CPUs"
    )
    ways = {
        "grid": {"split_grid": False, "jobs": 1},
        "points": {"split_grid": True, "jobs": 1},
        f"jobs={args.jobs}": {"split_grid": True, "jobs": args.jobs},
    }
    timing, tests = {}, {}
    for name, kw in ways.items():
        wall, cpu = time.perf_counter(), cpu_seconds()
        outcome = run_probe(task, emb, config, **kw)
        timing[name] = (time.perf_counter() - wall, cpu_seconds() - cpu)
        primary = next(iter(outcome.runs[0]["test"]))
        tests[name] = np.array([r["test"][primary] for r in outcome.runs])
        print(
            f"  {name:8s} {timing[name][0]:8.1f} s wall {timing[name][1]:8.1f} s CPU   "
            f"{primary} {tests[name].mean():.4f} ({len(outcome.runs)} runs; chosen "
            f"{outcome.hparams['hidden_layers']} layers, {outcome.hparams['initialization']}, "
            f"lr {outcome.hparams['lr']:g})",
            flush=True,
        )
    base_wall, base_cpu = timing["grid"]
    for name, (wall, cpu) in timing.items():
        diff = np.abs(tests[name] - tests["grid"]).max()
        print(
            f"{name:8s} wall ratio grid/{name} {base_wall / wall:.2f}x, CPU ratio "
            f"{base_cpu / cpu:.2f}x; max |test difference| vs grid {diff:.4f}"
        )


if __name__ == "__main__":
    main()
