"""Training curves are read back from the TensorBoard events a real run writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import noise_clips, tiny_mae_config

from echoic.errors import EchoicError
from echoic.train.curves import plot_runs, read_scalars
from echoic.train.run import pretrain


def test_scalars_match_the_step_log_and_plot(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    audio = noise_clips(tmp_path / "audio", 3, 12000, seed=1)
    out = tmp_path / "run"
    config = tiny_mae_config(out, audio, optim__warmup_steps=2, trainer__max_steps=4)
    pretrain(config, export=False)
    rows = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    scalars = read_scalars(out)
    steps, losses = scalars["loss"]
    assert len(steps) == 4
    # one loss per step, the same numbers the JSONL step log holds (one micro-batch per step)
    assert np.allclose(losses, [r["loss"] for r in rows], rtol=1e-6)
    lr_steps, lrs = scalars["train/lr"]
    assert list(lr_steps) == list(steps)
    assert np.allclose(lrs, [r["lr"] for r in rows])  # warm-up then cosine, as logged
    png = plot_runs([out, out], tmp_path / "curves.png", labels=["a", "b"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and (tmp_path / "curves.png").read_bytes() == png


def test_a_folder_without_events_says_what_it_expected(tmp_path: Path) -> None:
    with pytest.raises(EchoicError, match="no TensorBoard event files"):
        read_scalars(tmp_path)
