"""``centred_mel`` (torchaudio's centred mel spectrogram in dB, Dasheng's frontend): frames
centred on ``i * hop``, each item reflected at its own ends, the ``top_db`` floor per item — so an
item gives the same features alone or padded in a batch. Parity with torchaudio itself is checked
bit for bit in ``tests/convert/test_convert_dasheng.py`` (Dasheng's frontend)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from echoic.checkpoint import EchoicModel, ModelConfig
from echoic.errors import ConfigError
from echoic.features.base import build_frontend
from echoic.features.centred_mel import float32_mel_bank
from echoic.types import AudioBatch


def batch_of(clips: list[np.ndarray], fill: float = 0.0) -> AudioBatch:
    longest = max(len(c) for c in clips) + 321
    waveform = torch.full((len(clips), longest), fill)
    for i, clip in enumerate(clips):
        waveform[i, : len(clip)] = torch.from_numpy(clip)
    return AudioBatch(waveform, torch.tensor([len(c) for c in clips]), 16000)


def test_an_item_gives_the_same_features_alone_or_in_a_batch(clips_16k):
    frontend = build_frontend("centred_mel", {})
    clips = [
        clips_16k["librispeech"][:37_777],
        clips_16k["esc50_birds"][:16_123],
        np.zeros(200, np.float32),
    ]
    batched = frontend(batch_of(clips, fill=0.5))
    assert batched.lengths.tolist() == [1 + len(c) // 160 for c in clips]
    for i, clip in enumerate(clips):
        alone = frontend(batch_of([clip]))
        n = int(alone.lengths[0])
        torch.testing.assert_close(batched.values[i, :, :n], alone.values[0, :, :n], atol=0, rtol=0)
        assert torch.all(batched.values[i, :, n:] == 0.0)


def test_frames_are_counted_by_their_centres():
    frontend = build_frontend("centred_mel", {})
    assert frontend.win_length == 0 and frontend.min_samples == 1
    assert frontend.first_centre_s == pytest.approx(-0.5 / 16000)
    for n, frames in [(0, 1), (1, 1), (159, 1), (160, 2), (16000, 101)]:
        assert frontend.num_frames(n) == frames
    short = frontend(batch_of([np.full(100, 0.1, np.float32)]))  # zero-extended, then reflected
    assert short.values.shape == (1, 64, 1) and torch.isfinite(short.values).all()


def test_the_floor_sits_top_db_below_each_items_own_maximum():
    frontend = build_frontend("centred_mel", {"top_db": 30.0})
    rng = np.random.default_rng(0)
    loud = (rng.standard_normal(8000) * 0.5).astype(np.float32)
    quiet = loud * 1e-3
    values = frontend(batch_of([loud, quiet])).values
    for i in range(2):
        item = values[i]
        assert float(item.max() - item.min()) <= 30.0 + 1e-4
        assert float(item.max() - item.min()) > 29.0  # the floor is reached (silent bins)


def test_the_geometry_counts_the_encoders_time_steps():
    """TokenGeometry with centred frames: Dasheng's steps of 4 frames (a valid convolution)."""
    config = ModelConfig(encoder="dasheng_test", frontend="centred_mel")
    model = EchoicModel(config).eval()
    for n in (480, 639, 640, 16000, 23_456):
        wave = torch.randn(1, n, generator=torch.Generator().manual_seed(n)) * 0.1
        with torch.no_grad():
            out = model(AudioBatch(wave, torch.tensor([n]), 16000))
        assert out.grid[1] == model.geometry.num_time_steps(n) == (1 + n // 160) // 4
        torch.testing.assert_close(
            out.token_times_s[0].double(), model.geometry.centre_s(out.time_index[0])
        )


def test_float32_filters_and_settings_are_checked():
    bank = float32_mel_bank(257, 64, 16000, 0.0, 8000.0)
    assert bank.dtype == torch.float32 and bank.shape == (257, 64) and bank.max() <= 1.0
    with pytest.raises(ConfigError, match="log"):
        build_frontend("centred_mel", {"log": "ln"})
    with pytest.raises(ConfigError, match="top_db"):
        build_frontend("centred_mel", {"top_db": -1.0})
