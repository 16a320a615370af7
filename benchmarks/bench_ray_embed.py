"""``echoic embed --engine ray`` (2 local workers) against the local engine, over the real tasks' audio.

Both embed the same files with the same model into Parquet; the rows must be identical (same
ids, max |diff| <= 1e-6). The files are read once before timing (page cache), then the local
engine runs with 1 torch thread and with ``workers x threads`` (the cores Ray gets), then Ray.
Prints the wall time of each, the ratios, the Ray overhead per file (the core-seconds Ray spends,
``workers x threads x wall``, minus the 1-thread local wall time, per file: 0 for perfect
scaling; with and without starting Ray), the CPU and the thread counts.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ray_embed.py --limit 500   # a quick run
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ray_embed.py               # all ~20k clips

``--limit N`` takes N files spread evenly over the sorted list of every task's audio.
Needs Ray: ``pip install 'echoic[ray]'``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from echoic.cli.embed import build_model
from echoic.data.discover import find_audio
from echoic.embed.extract import extract
from echoic.embed.ray_extract import RayConfig, extract_ray, import_ray

REPO = Path(__file__).resolve().parents[1]


def cpu_lines() -> list[str]:
    """The CPU model and its vector / matrix flags (lscpu), and the thread settings."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        text = ""
    model = re.search(r"Model name:\s*(.+)", text)
    flags = re.search(r"Flags:\s*(.+)", text)
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "fma")
    have = [f for f in wanted if flags and f in flags.group(1).split()]
    return [
        f"cpu: {model.group(1).strip() if model else 'unknown'}; flags: {' '.join(have) or '-'}",
        f"cores seen: {os.cpu_count()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"torch {torch.__version__}",
    ]


def task_audio(tasks_dir: Path, limit: int | None) -> list[Path]:
    folders = sorted(tasks_dir.glob("*-v1.0.0-full"))
    if not folders:
        raise SystemExit(f"no task folders *-v1.0.0-full under {tasks_dir}; build them first")
    files = [Path(f) for f in find_audio([str(f) for f in folders])]
    if limit and limit < len(files):
        picks = np.linspace(0, len(files) - 1, limit).round().astype(int)
        files = [files[i] for i in sorted(set(picks.tolist()))]
    return files


def rows(path: Path) -> dict[str, np.ndarray]:
    table = pq.read_table(path, columns=["path", "embedding"])
    ids = table.column("path").to_pylist()
    assert len(ids) == len(set(ids)), f"{path}: a row written twice"
    values = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    return dict(zip(ids, values, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks-dir", type=Path, default=REPO / "tasks")
    parser.add_argument("--limit", type=int, default=None, help="files (default: all)")
    parser.add_argument("--model", default="echoic-tiny")
    parser.add_argument("--workers", type=int, default=2, help="Ray workers")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per Ray worker")
    parser.add_argument("--files-per-batch", type=int, default=16)
    parser.add_argument(
        "--local-threads",
        default=None,
        help="comma-separated torch thread counts of the local runs (default: 1 and workers x "
        "threads)",
    )
    args = parser.parse_args()
    files = task_audio(args.tasks_dir, args.limit)
    for line in cpu_lines():
        print(line)
    local_threads = args.workers * args.threads
    print(f"{len(files)} files from {args.tasks_dir}, model {args.model}; local: "
          f"{local_threads} torch threads; ray: {args.workers} workers x {args.threads} thread(s)")  # fmt: skip

    for f in files:  # into the page cache: neither engine pays the first read
        f.read_bytes()
    local_s: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench_ray_embed-") as tmp:
        model = build_model(args.model, {}, "cpu")
        counts = (
            [int(t) for t in args.local_threads.split(",")]
            if args.local_threads
            else sorted({1, local_threads})
        )
        for threads in counts:
            torch.set_num_threads(threads)
            start = time.perf_counter()
            local_report = extract(files, Path(tmp) / f"local{threads}.parquet", model,
                                   files_per_batch=args.files_per_batch, progress=False)  # fmt: skip
            local_s[threads] = time.perf_counter() - start
        torch.set_num_threads(1)
        del model

        ray = import_ray(local=True)
        start = time.perf_counter()
        ray.init(num_cpus=max(os.cpu_count() or 1, local_threads), include_dashboard=False,
                 _node_ip_address="127.0.0.1", log_to_driver=False)  # fmt: skip
        ray_start_s = time.perf_counter() - start
        config = RayConfig(num_workers=args.workers, cpus_per_worker=float(args.threads),
                           files_per_batch=args.files_per_batch)  # fmt: skip
        start = time.perf_counter()
        ray_report = extract_ray(files, Path(tmp) / "ray.parquet",
                                 partial(build_model, args.model, {}), config=config, progress=False)  # fmt: skip
        ray_s = time.perf_counter() - start
        ray.shutdown()

        local_rows, ray_rows = rows(Path(tmp) / "local1.parquet"), rows(Path(tmp) / "ray.parquet")
    same_ids = sorted(local_rows) == sorted(ray_rows)
    diff = (
        max(float(np.abs(local_rows[k] - ray_rows[k]).max()) for k in local_rows)
        if same_ids
        else float("nan")
    )
    audio_s, n, cores = local_report.audio_s, len(files), args.workers * args.threads
    for threads, seconds in local_s.items():
        print(f"local, {threads} thread(s): {seconds:8.1f} s  ({local_report.written} rows, "
              f"{len(local_report.errors)} skipped, {audio_s / 3600:.2f} h of audio, "
              f"{audio_s / seconds:.0f} audio-s/s)")  # fmt: skip
    print(f"ray, {args.workers} x {args.threads} thread(s): {ray_s:8.1f} s  + {ray_start_s:.1f} s "
          f"to start Ray ({ray_report.written} rows, {len(ray_report.errors)} skipped, "
          f"{audio_s / ray_s:.0f} audio-s/s)")  # fmt: skip
    for threads, seconds in local_s.items():
        print(f"ray / local ({threads} thread(s)) wall time: {ray_s / seconds:.2f} (with the "
              f"start of Ray: {(ray_s + ray_start_s) / seconds:.2f})")  # fmt: skip
    one = local_s[1]
    print(f"ray overhead per file: {1000 * (cores * ray_s - one) / n:.1f} core-ms (with the "
          f"start of Ray: {1000 * (cores * (ray_s + ray_start_s) - one) / n:.1f} core-ms); "
          f"local 1 thread: {1000 * one / n:.1f} ms per file")  # fmt: skip
    print(f"rows identical: same ids {same_ids} ({len(local_rows)} rows), max |diff| {diff:.3g}")
    if not same_ids or not diff <= 1e-6:
        sys.exit("rows differ between the engines")


if __name__ == "__main__":
    main()
