"""`echoic curves RUN [RUN ...] --out curves.png`: plot pretraining runs' TensorBoard scalars."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("curves", help="plot pretraining loss / lr curves to a PNG")
    p.add_argument("runs", nargs="+", help="pretraining output folders (with tb/)")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--labels", default=None, help="comma-separated panel titles")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from echoic.train.curves import plot_runs

    labels = args.labels.split(",") if args.labels else None
    plot_runs(args.runs, Path(args.out), labels=labels)
    print(f"curves: {args.out}")
    return 0
