"""Embedding throughput of whole models (audio-seconds per second), side by side in one run.

Every model embeds the same real clips (the first ``--clips`` files of a shared-data folder, cut or
tiled to ``--seconds``) through ``scene_embeddings`` of the model ``echoic eval`` resolves the name to — its own frontend, chunking
and pooling, as ``echoic embed`` runs it — on ``--threads`` torch threads. Rounds alternate over
the models, reversing the order every round, so load from other processes hits all of them alike;
each model's median round time gives its throughput, and the ratios to the first model are the
medians of per-round ratios. Loading and one warm-up pass are not timed.

Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_model_throughput.py \\
        --models echoic-small,echoic-tiny,aisfx --threads 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

from _table import machine


def clips(folder: Path, count: int, seconds: float, rate: int = 16000) -> list[np.ndarray]:
    from echoic.data import find_audio, load_audio

    out: list[np.ndarray] = []
    for path in find_audio([folder]):
        x, _ = load_audio(path, rate)
        x = x.reshape(-1)
        if x.size == 0:
            continue
        n = int(seconds * rate)
        out.append(np.resize(x, n).astype(np.float32))  # tiled or cut to the length
        if len(out) == count:
            break
    if len(out) < count:
        raise SystemExit(f"{folder}: expected {count} readable audio files, found {len(out)}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", default="echoic-small,echoic-tiny,aisfx")
    p.add_argument("--data", default=None, help="audio folder (default: shared esc50 audio)")
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()

    import torch

    from echoic.tasks.paths import resolve_data_dir
    from echoic.zoo.registry import resolve_model

    torch.set_num_threads(args.threads)
    folder = Path(args.data) if args.data else resolve_data_dir(None) / "esc50" / "audio"
    audio = clips(folder, args.clips, args.seconds)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    embedders = {}
    for name in names:
        embedder = resolve_model(name)
        embedder.scene_embeddings(audio[:2], sample_rate=16000)  # warm-up
        embedders[name] = embedder
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            embedders[name].scene_embeddings(audio, sample_rate=16000)
            times[name].append(time.perf_counter() - start)
    total = args.clips * args.seconds
    print(
        f"{machine()}; torch threads {args.threads}; OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{args.clips} clips x {args.seconds:g} s from {folder}; {args.rounds} alternating rounds"
    )
    print(f"{'model':<16} {'median s':>9} {'min s':>8} {'audio-s/s':>10} {'vs ' + names[0]:>14}")
    for name in names:
        med = statistics.median(times[name])
        ratio = statistics.median(a / b for a, b in zip(times[names[0]], times[name], strict=True))
        print(f"{name:<16} {med:9.3f} {min(times[name]):8.3f} {total / med:10.1f} {ratio:13.2f}x")


if __name__ == "__main__":
    main()
