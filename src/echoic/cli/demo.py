"""`make demo`: embed ESC-50 fold 1 with the default model and print the throughput.

Run as ``python -m echoic.cli.demo [--out DIR]``. Later issues turn this into task building +
evaluation + report.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

from echoic.checkpoint import DEFAULT_MODEL
from echoic.data.locate import shared_data_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="demo-out", help="output folder")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--fold", type=int, default=1)
    args = parser.parse_args(argv)

    from echoic.embed.embedder import Embedder
    from echoic.embed.extract import extract

    esc50 = shared_data_dir() / "esc50"
    with (esc50 / "meta.csv").open() as fh:
        files = [esc50 / r["file"] for r in csv.DictReader(fh) if int(r["fold"]) == args.fold]
    out = Path(args.out) / f"esc50_fold{args.fold}.parquet"
    embedder = Embedder(args.model)
    print(
        f"echoic demo: embedding {len(files)} ESC-50 fold-{args.fold} clips with {embedder.label}"
    )
    start = time.perf_counter()
    report = extract([str(f) for f in files], out, embedder)
    wall = time.perf_counter() - start
    print(report.summary())
    if report.written:
        print(
            f"throughput: {report.audio_s / max(report.wall_s, 1e-9):.1f} audio-seconds per second "
            f"({report.audio_s:.0f} s of audio in {wall:.1f} s wall)"
        )
    print(f"embeddings: {out.resolve()}")
    return 0 if not report.errors else 1


if __name__ == "__main__":
    sys.exit(main())
