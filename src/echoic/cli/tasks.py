"""`echoic tasks build|describe`: HEAR-format benchmark tasks from real audio."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("tasks", help="build or describe HEAR-format evaluation tasks")
    verbs = p.add_subparsers(dest="tasks_verb", metavar="SUBVERB")

    b = verbs.add_parser("build", help="build tasks into DIR (resumable, deterministic)")
    b.add_argument("--out", help="output folder (one sub-folder per task); required to build")
    b.add_argument("--tasks", default=None, help="comma-separated task names (default: all)")
    b.add_argument("--sample-rate", type=int, default=16000, help="audio rate in Hz")
    b.add_argument("--mode", choices=("full", "small"), default="full", help="small: tiny subset")
    b.add_argument(
        "--data", default=None, help="data folder (default: $ECHOIC_DATA or ../shared/data)"
    )
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.add_argument("--list", action="store_true", help="list the task names and exit")
    b.set_defaults(func=run_build)

    d = verbs.add_parser("describe", help="clips, label counts and duration per task and split")
    d.add_argument("dir", help="a task directory or a folder of them")
    d.set_defaults(func=run_describe)

    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_build(args: argparse.Namespace) -> int:
    from echoic.tasks.paths import resolve_data_dir
    from echoic.tasks.writer import BuildResult, build_tasks, task_names

    if args.list:
        print("\n".join(task_names()))
        return 0
    if not args.out:
        print("echoic tasks build: error: --out DIR is required (or --list)", file=sys.stderr)
        return 2
    names = [n.strip() for n in args.tasks.split(",") if n.strip()] if args.tasks else None
    data_dir = resolve_data_dir(args.data)

    def report(r: BuildResult) -> None:
        print(
            f"{r.name:24s} {r.clips:6d} clips ({r.rendered} rendered) "
            f"{r.audio_seconds / 60:7.1f} min  {r.seconds:7.1f} s  {r.bytes / 2**20:8.1f} MiB",
            flush=True,
        )

    results = build_tasks(
        names, Path(args.out), data_dir, args.sample_rate, args.mode, not args.quiet, report
    )
    seconds = sum(r.seconds for r in results)
    size = sum(r.bytes for r in results)
    print(
        f"{'total':24s} {sum(r.clips for r in results):6d} clips{'':41s}"
        f"{seconds:7.1f} s  {size / 2**20:8.1f} MiB"
    )
    return 0


def run_describe(args: argparse.Namespace) -> int:
    from echoic.tasks.describe import find_task_dirs, format_summary, summarise_task

    for task_dir in find_task_dirs(Path(args.dir)):
        print(format_summary(summarise_task(task_dir)))
    return 0
