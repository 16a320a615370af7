"""``hop_s`` / ``first_centre_s``: a click at a known time peaks in the frame centred nearest to it."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from echoic.features.base import build_frontend
from echoic.types import AudioBatch

CASES = [
    # name, config, sample rate, expected hop in seconds, expected window length in samples
    pytest.param("kaldi_fbank", {}, 16000, 0.010, 400, id="kaldi"),
    pytest.param(
        "kaldi_fbank",
        {"sample_rate": 8000, "frame_length_ms": 50.0, "frame_shift_ms": 20.0, "n_mels": 40},
        8000,
        0.020,
        400,
        id="kaldi-8k",
    ),
    pytest.param("logmel", {}, 16000, 0.010, 400, id="logmel"),
    pytest.param(
        "logmel",
        {"n_fft": 1024, "win_length": 1024, "hop_length": 320, "window": "hamming"},
        16000,
        0.020,
        1024,
        id="logmel-1024",
    ),
]


@pytest.mark.parametrize(("name", "config", "rate", "hop_s", "win"), CASES)
def test_click_lands_in_the_nearest_frame(
    name: str, config: dict[str, Any], rate: int, hop_s: float, win: int
) -> None:
    frontend = build_frontend(name, config)
    assert frontend.hop_s == pytest.approx(hop_s)
    # centre of frame 0 = mean time of its samples 0 … win - 1
    assert frontend.first_centre_s == pytest.approx((win - 1) / 2 / rate)
    hop = round(hop_s * rate)
    n_samples = 3 * rate
    for frame in (3, 40, 117):
        for offset in (-hop // 4, -7, 0, 11, hop // 4):
            position = (win - 1) // 2 + frame * hop + offset  # sample index of the click
            waveform = torch.zeros(1, n_samples)
            waveform[0, position] = 0.8
            features = frontend(AudioBatch(waveform, torch.tensor([n_samples]), rate))
            assert features.hop_s == frontend.hop_s
            assert features.first_centre_s == frontend.first_centre_s
            loudest = int(features.values[0].mean(dim=0).argmax())
            nearest = round((position / rate - features.first_centre_s) / features.hop_s)
            assert nearest == frame
            assert loudest == nearest, f"click at sample {position}: loudest frame {loudest}"
