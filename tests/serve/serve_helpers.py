"""A small labelled collection in the HEAR layout, its index, and `echoic serve` in a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from echoic.cli.main import main

SR = 16000
KINDS = {  # task → label → how to make a clip of it
    "tones": {"low": 220.0, "high": 1760.0},
    "noises": {"hiss": 0.0, "rumble": -1.0},
}
PER_LABEL = 6


def _clip(freq: float, rng: np.random.Generator, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    if freq > 0:  # a tone, its pitch jittered by a few per cent
        f = freq * (1 + 0.03 * rng.standard_normal())
        return (0.4 * np.sin(2 * np.pi * f * t) + 0.005 * rng.standard_normal(t.size)).astype(
            np.float32
        )
    noise = rng.standard_normal(t.size)
    if freq < 0:  # rumble: noise through a 64-tap moving average (a low-pass)
        noise = np.convolve(noise, np.ones(64) / 8, mode="same")
    return (0.2 * noise).astype(np.float32)


@dataclass
class Collection:
    root: Path  # holds collection/ (the audio), outside/ (a file that must never be served), idx/
    audio: Path
    index: Path
    labels: dict[str, str]  # path → label
    swapped: Path  # an indexed file replaced by a symlink to outside/secret.wav after indexing
    secret: Path


def make_collection(root: Path) -> Collection:
    """Two HEAR-layout tasks of labelled clips, embedded with ``logmel_stats`` and indexed."""
    rng = np.random.default_rng(0)
    audio = root / "collection"
    labels: dict[str, str] = {}
    for task, kinds in KINDS.items():
        task_dir = audio / task
        split = task_dir / "16000" / "fold00"
        split.mkdir(parents=True)
        truth = {}
        for label, freq in kinds.items():
            for i in range(PER_LABEL):
                path = split / f"{label}_{i:02d}.wav"
                sf.write(path, _clip(freq, rng), SR, subtype="PCM_16")
                truth[path.name] = [label]
                labels[str(path)] = label
        (task_dir / "fold00.json").write_text(json.dumps(truth))
        (task_dir / "task_metadata.json").write_text(json.dumps({"task_name": task}))
    swapped = audio / "tones" / "16000" / "fold00" / "swap.wav"
    sf.write(swapped, _clip(440.0, rng), SR, subtype="PCM_16")
    outside = root / "outside"
    outside.mkdir()
    secret = outside / "secret.wav"
    sf.write(secret, _clip(440.0, rng), SR, subtype="PCM_16")
    (root / "secret.txt").write_text("not for the explorer\n")
    emb = root / "emb.parquet"
    assert main(["embed", str(audio), "--model", "logmel_stats", "--out", str(emb), "--quiet"]) == 0
    index = root / "idx"
    assert main(["index", "build", str(emb), "--out", str(index), "--quiet"]) == 0
    swapped.unlink()  # after indexing: the indexed path now leads out of the collection
    swapped.symlink_to(secret)
    return Collection(root, audio, index, labels, swapped, secret)


def tree_state(folder: Path) -> dict[str, tuple[int, int]]:
    """Every entry under ``folder``: (size, mtime in ns) — to show nothing was written there."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            out[os.path.join(dirpath, name)] = (st.st_size, st.st_mtime_ns)
    return out


@dataclass
class RunningServer:
    process: subprocess.Popen[str]
    url: str
    start_s: float
    output: list[str]


def start_server(index: Path, *args: str, timeout_s: float = 60.0) -> RunningServer:
    """``echoic serve INDEX --port 0 ARGS`` in a subprocess, once its health check answers."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "echoic.cli.main", "serve", str(index), "--port", "0", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert process.stdout is not None
    seen = []
    url = None
    while url is None:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"echoic serve exited ({process.wait()}): {''.join(seen)}")
        seen.append(line)
        if m := re.search(r"ready in .* at (http://\S+/)", line):
            url = m.group(1)
        if time.perf_counter() - start > timeout_s:
            process.kill()
            raise RuntimeError(f"echoic serve not ready after {timeout_s} s: {''.join(seen)}")
    while True:
        try:
            with urllib.request.urlopen(url + "api/health", timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            if time.perf_counter() - start > timeout_s:
                process.kill()
                raise
            time.sleep(0.05)
    ready = time.perf_counter() - start
    drain = threading.Thread(target=lambda: seen.extend(process.stdout or []), daemon=True)
    drain.start()  # the server's later output must not fill the pipe and block it
    return RunningServer(process, url, ready, seen)


def stop_server(server: RunningServer) -> str:
    """Stop it; everything it printed."""
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    return "".join(server.output)
