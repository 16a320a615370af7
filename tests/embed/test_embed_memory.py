"""Peak memory of ``extract`` grows no faster than the output it writes.

A child process embeds a short file (the baseline: model, kernels and writer warmed up), then a
5-minute one with timestamps, through a tiny untrained ViT shaped like echoic-tiny's output
(8 frequency patches × 192 = 1536-d frames every 160 ms, timestamps every 40 ms: 44 MiB). What the
long file may add to the peak: its native frames (a quarter of the timestamps) and its decoded
audio (0.4 of them) — about 0.7× the timestamps, which are interpolated page by page as they are
written and never held whole; the bound is 1.0× plus 40 MiB (measured 0.71×). Holding the
timestamps made it 1.8×; before frames were streamed and rows written page by page, 8× (chunk
outputs, float copies, pyarrow building a row as one page).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 16000

CHILD = r"""
import json, resource, sys
import torch
torch.set_num_threads(1)
import pyarrow.parquet as pq
from echoic.checkpoint import EchoicModel, ModelConfig
from echoic.embed.embedder import Embedder
from echoic.embed.extract import extract

def peak_mib():
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale

short, long, out = sys.argv[1:4]
torch.manual_seed(0)
config = ModelConfig(
    encoder="vit_test",
    encoder_config={"dim": 192, "depth": 1, "heads": 1},
    frontend="kaldi_fbank",
    frontend_config={"n_mels": 128},
    name="memory-test",
    untrained=True,
    embed={"freq_pool": "concat", "chunk_s": 2.56, "overlap_s": 0.64},
)
embedder = Embedder(EchoicModel(config).eval())
extract([short], out + ".short.parquet", embedder, timestamps=True, progress=False)
base = peak_mib()
extract([long], out, embedder, timestamps=True, progress=False)
values = pq.read_metadata(out).row_group(0).column(4).num_values
print(json.dumps({"base": base, "peak": peak_mib(), "timestamps": values * 4 / 2**20}))
"""


def _write_audio(path: Path, seconds: float, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    wave = 0.1 * rng.standard_normal(t.shape) + 0.3 * np.sin(2 * np.pi * (200 + 50 * np.sin(t)) * t)
    sf.write(path, wave.astype(np.float32), SR, subtype="PCM_16")
    return path


@pytest.mark.skipif(sys.platform == "win32", reason="needs the resource module (POSIX)")
def test_peak_memory_grows_with_the_output(tmp_path: Path) -> None:
    short = _write_audio(tmp_path / "short.wav", 20.0, seed=0)
    long = _write_audio(tmp_path / "long.wav", 300.0, seed=1)
    run = subprocess.run(
        [sys.executable, "-c", CHILD, str(short), str(long), str(tmp_path / "out.parquet")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    measured = json.loads(run.stdout.strip().splitlines()[-1])
    growth, output = measured["peak"] - measured["base"], measured["timestamps"]
    assert output == pytest.approx(300 / 0.04 * 1536 * 4 / 2**20, rel=0.01)
    assert growth <= 1.0 * output + 40, (
        f"embedding 5 min raised the peak RSS by {growth:.0f} MiB for {output:.0f} MiB of "
        f"timestamp embeddings; expected at most {output + 40:.0f} MiB (about 0.7x: the native "
        "frames and the decoded audio). Something holds extra copies (the timestamps whole?): "
        "profile with benchmarks/bench_embed_memory.py."
    )
