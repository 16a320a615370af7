"""CLI start-up: ``echoic models`` (every card listed, nothing built) beside a bare ``import torch``.

Issue 16 asks for ``echoic models`` under 1 s. Listing imports no torch (card modules name their
builders lazily, bundled models declare their sizes in config.json), so the yardstick is what the
listing used to pay before anything else: importing torch. Both commands are timed from outside by
``farm-bench`` (whole process, start-up included), in turn A B A B …, and the ratio is taken pair
by pair. Also timed: ``echoic models --json`` (hashes each weights file present: the bundled
model's), and ``echoic --help``.

Run::

    .venv/bin/python benchmarks/bench_cli_startup.py --runs 7
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from _table import machine

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def bench(a: list[str], b: list[str] | None, runs: int) -> None:
    tool = shutil.which("farm-bench")
    if tool is None:
        raise SystemExit("farm-bench is not on PATH: this benchmark times commands with it")
    cmd = [tool, "-n", str(runs), "--timeout", "600"]
    if b is not None:
        cmd += ["--vs", shlex.join(b)]
    cmd += ["--", *a]
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)
    print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print(machine())
    echoic = [PYTHON, "-m", "echoic.cli.main"]
    bench([*echoic, "models"], [PYTHON, "-c", "import torch"], args.runs)
    bench([*echoic, "models", "--json"], None, args.runs)
    bench([*echoic, "--help"], None, args.runs)


if __name__ == "__main__":
    main()
