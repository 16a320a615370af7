"""The worked example of docs/adding_an_encoder.md runs as written (in a fresh process, so its
registration does not leak into other tests): it embeds, trains with ssast and is refused by mae."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "adding_an_encoder.md"

CHECK = """
import numpy as np, torch, pytest
import echoic
from echoic.checkpoint import EchoicModel, ModelConfig
from echoic.errors import ConfigError
from echoic.objectives import build_objective
from echoic.types import TrainBatch
from echoic.encoders import build_encoder

model = EchoicModel(ModelConfig(encoder="frames_test", frontend="kaldi_fbank")).eval()
clip = (np.random.default_rng(0).standard_normal(24000) * 0.1).astype(np.float32)
out = echoic.Embedder(model, chunk_s=0.64, overlap_s=0.16).embed([clip, clip[:3000]])
assert out[0].scene.shape == (32,) and out[1].frames.shape[0] == 5, out[1].frames.shape
hops = out[0].frame_times_ms[1:] - out[0].frame_times_ms[:-1]
assert torch.allclose(hops, torch.full_like(hops, 40.0))
objective = build_objective("ssast", build_encoder("frames_test"))
features = model.frontend(echoic.data.pad_batch([torch.from_numpy(clip)] * 2, 16000))
loss = objective(TrainBatch.of(features), torch.Generator().manual_seed(0)).loss
loss.backward()
assert torch.isfinite(loss)
with pytest.raises(ConfigError, match="accepts_keep_idx"):
    build_objective("mae", build_encoder("frames_test"))
print("ok")
"""


def test_the_worked_example_embeds_and_trains() -> None:
    blocks = re.findall(
        r"```python\n(# src/echoic/encoders/frames.py\n.*?)```", DOC.read_text(), re.S
    )
    assert len(blocks) == 1, "the worked example's code block is missing from the doc"
    code = blocks[0] + "\n" + textwrap.dedent(CHECK)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr
