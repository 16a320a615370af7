"""Peak memory of ``echoic embed FILE --timestamps`` on long files, and how it grows with length.

Makes 16 kHz FLAC files of real speech (LibriSpeech clips from ``../shared/data``, looped; noise
and tones when the data is absent) of each ``--minutes`` length under ``--workdir`` (kept between
runs), embeds each in a fresh child process (``echoic.cli.main.main``, the code path of ``echoic
embed``), and prints the child's peak RSS (``ru_maxrss``, what ``/usr/bin/time -v`` calls "Maximum
resident set size"), the size of what it wrote, and the least-squares slope of the peak in MB per
minute of audio next to the output's own. MB = 10^6 bytes.

Run (one at a time on a shared machine: 60 min takes several CPU-minutes with echoic-tiny)::

    .venv/bin/python benchmarks/bench_embed_memory.py                      # 10, 30, 60 min
    .venv/bin/python benchmarks/bench_embed_memory.py --minutes 1 2 4      # a quick look
    .venv/bin/python benchmarks/bench_embed_memory.py --pythonpath OLD/src # another checkout
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf

SR = 16000
REPO = Path(__file__).resolve().parents[1]
SPEECH = REPO.parent / "shared" / "data" / "librispeech_speakers" / "audio"
MB = 1e6

CHILD = r"""
import json, resource, sys, time
from echoic.cli.main import main
start = time.perf_counter()
code = main(sys.argv[1:])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
print(json.dumps({"code": code, "peak_bytes": peak, "wall_s": time.perf_counter() - start}))
"""


@dataclass
class Measure:
    minutes: float
    peak_mb: float
    wall_s: float
    timestamps_mb: float
    file_mb: float


def source_audio(max_clips: int = 40) -> tuple[np.ndarray, str]:
    """A few minutes of real speech at 16 kHz (or a synthetic stand-in) to loop, and its origin."""
    clips = sorted(SPEECH.glob("*.opus"))[:max_clips] if SPEECH.is_dir() else []
    if clips:
        from echoic.data.audio import load_audio

        return np.concatenate([load_audio(c, sample_rate=SR)[0] for c in clips]), str(SPEECH)
    rng = np.random.default_rng(0)
    t = np.arange(300 * SR) / SR
    wave = 0.05 * rng.standard_normal(t.shape) + 0.3 * np.sin(
        2 * np.pi * (220 + 80 * np.sin(t)) * t
    )
    return wave.astype(np.float32), "noise + tones (no LibriSpeech clips found)"


def long_file(workdir: Path, minutes: float, base: np.ndarray) -> Path:
    """``workdir/long<minutes>.flac``: ``base`` looped to ``minutes``, PCM-16 (reused if there)."""
    path = workdir / f"long{minutes:g}.flac"
    samples = round(minutes * 60 * SR)
    if path.is_file() and sf.info(str(path)).frames == samples:
        return path
    wave = np.clip(np.resize(base, samples), -1.0, 1.0)
    sf.write(str(path), wave, SR, subtype="PCM_16")
    return path


def measure(
    audio: Path, out: Path, model: str, pythonpath: str | None, threads: int | None
) -> Measure:
    """Embed ``audio`` in a fresh process; its peak RSS and the size of what it wrote."""
    for stale in (out, out.with_name(out.stem + ".errors.csv")):
        stale.unlink(missing_ok=True)
    args = ["embed", str(audio), "--model", model, "--out", str(out), "--timestamps", "--quiet"]
    if threads:
        args += ["--threads", str(threads)]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    run = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env, check=False
    )
    if run.returncode != 0:
        raise SystemExit(f"embedding {audio} failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
    result = json.loads(run.stdout.strip().splitlines()[-1])
    if result["code"] != 0:
        raise SystemExit(f"echoic embed {audio} returned {result['code']}:\n{run.stdout[-3000:]}")
    leaf = pq.read_metadata(out).row_group(0).column(4)  # timestamp_embeddings values
    minutes = sf.info(str(audio)).frames / SR / 60
    return Measure(
        minutes,
        result["peak_bytes"] / MB,
        result["wall_s"],
        leaf.num_values * 4 / MB,
        out.stat().st_size / MB,
    )


def slope(x: list[float], y: list[float]) -> tuple[float, float]:
    """Least-squares ``(slope, intercept)`` of ``y`` on ``x`` (slope 0 for a single point)."""
    if len(x) < 2:
        return 0.0, y[0]
    a, b = np.polyfit(np.asarray(x), np.asarray(y), 1)
    return float(a), float(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10, 30, 60])
    parser.add_argument("--model", default="echoic-tiny")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "echoic-bench-memory"
    )
    parser.add_argument("--pythonpath", default=None, help="measure the echoic found here instead")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the child")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    base, origin = source_audio()
    print(f"model {args.model}; audio: {origin} ({len(base) / SR / 60:.1f} min, looped)")
    print(f"code: {args.pythonpath or 'this checkout'}; files in {args.workdir}")
    print(
        f"{'minutes':>7} {'audio MB':>9} {'timestamps MB':>13} {'file MB':>8} "
        f"{'peak RSS MB':>11} {'wall s':>7}"
    )
    results = []
    for minutes in args.minutes:
        audio = long_file(args.workdir, minutes, base)
        start = time.perf_counter()
        m = measure(
            audio,
            args.workdir / f"out{minutes:g}.parquet",
            args.model,
            args.pythonpath,
            args.threads,
        )
        results.append(m)
        audio_mb = m.minutes * 60 * SR * 4 / MB
        print(
            f"{m.minutes:7.1f} {audio_mb:9.1f} {m.timestamps_mb:13.1f} {m.file_mb:8.1f} "
            f"{m.peak_mb:11.1f} {time.perf_counter() - start:7.1f}",
            flush=True,
        )
    x = [m.minutes for m in results]
    peak, intercept = slope(x, [m.peak_mb for m in results])
    written, _ = slope(x, [m.timestamps_mb for m in results])
    on_disk, _ = slope(x, [m.file_mb for m in results])
    print(
        f"peak RSS: {peak:.1f} MB per minute of audio (+ {intercept:.0f} MB); output: "
        f"{written:.1f} MB/min of float32 timestamp embeddings, {on_disk:.1f} MB/min on disk; "
        f"peak / output slope = {peak / written if written else float('nan'):.2f}"
    )


if __name__ == "__main__":
    main()
