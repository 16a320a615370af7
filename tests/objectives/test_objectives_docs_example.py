"""The minimal example of docs/adding_an_objective.md runs as written, on both encoder families (in
a fresh process, so its registration does not leak into other tests)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "adding_an_objective.md"

CHECK = """
import torch
from echoic.encoders import build_encoder
from echoic.objectives import build_objective
from echoic.types import Features, TrainBatch

inputs = {
    "vit_test": Features(torch.randn(2, 128, 64), torch.tensor([64, 40]), 0.01, 0.0125),
    "wav_test": Features(torch.randn(2, 1, 16000) * 0.1, torch.tensor([16000, 9000]), 1 / 16000, 0.0),
}
for family, features in inputs.items():
    objective = build_objective("latent_mse", build_encoder(family))
    out = objective(TrainBatch.of(features), torch.Generator().manual_seed(0))
    out.loss.backward()
    assert torch.isfinite(out.loss) and isinstance(out.logs["mse"], float), family
    assert objective.after_optimizer_step() == {"ema_decay": 0.999}
print("ok")
"""


def test_the_minimal_example_trains_on_both_families() -> None:
    pattern = r"```python\n(# src/echoic/objectives/latent_mse.py\n.*?)```"
    blocks = re.findall(pattern, DOC.read_text(), re.S)
    assert len(blocks) == 1, "the minimal example's code block is missing from the doc"
    code = blocks[0] + "\n" + textwrap.dedent(CHECK)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr
