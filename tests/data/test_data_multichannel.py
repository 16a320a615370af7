"""Multichannel loading and preparation: channels kept, each resampled like mono audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from echoic.data import load_audio, prepare_audio
from echoic.data.audio import prepare_mono


def stereo(n: int = 12_000, seed: int = 0) -> np.ndarray:
    """``(2, n)`` float32: a tone on the left, noise on the right."""
    rng = np.random.default_rng(seed)
    left = 0.4 * np.sin(2 * np.pi * 440 * np.arange(n) / 48_000)
    right = rng.uniform(-0.3, 0.3, n)
    return np.stack([left, right]).astype(np.float32)


def test_load_audio_keeps_channels_resampled_like_mono(tmp_path: Path):
    wave = stereo()
    sf.write(tmp_path / "stereo.wav", wave.T, 48_000, subtype="FLOAT")
    for c in range(2):
        sf.write(tmp_path / f"channel{c}.wav", wave[c], 48_000, subtype="FLOAT")
    kept, rate = load_audio(tmp_path / "stereo.wav", sample_rate=16_000, mono=False)
    assert rate == 16_000 and kept.shape == (2, 4_000) and kept.dtype == np.float32
    assert kept.flags.c_contiguous
    for c in range(2):
        alone, _ = load_audio(tmp_path / f"channel{c}.wav", sample_rate=16_000)
        np.testing.assert_allclose(kept[c], alone, rtol=0, atol=1e-6)
    mono, _ = load_audio(tmp_path / "stereo.wav", sample_rate=16_000)
    assert mono.shape == (4_000,)


def test_prepare_audio_mono_is_prepare_mono_bit_for_bit():
    wave = stereo()[0]
    for rate in (None, 48_000, 16_000):
        got, length = prepare_audio(wave, rate, 16_000, 400)
        want, want_length = prepare_mono(wave, rate, 16_000, 400)
        assert np.array_equal(got, want) and length == want_length
    got, length = prepare_audio(torch.from_numpy(wave[:100]), None, 16_000, 400)
    assert got.shape == (400,) and length == 100


def test_prepare_audio_downmixes_for_mono_models():
    wave = stereo()
    got, length = prepare_audio(wave, 48_000, 16_000, 400)
    want, _ = prepare_mono(wave.mean(axis=0), 48_000, 16_000, 400)
    assert np.array_equal(got, want) and length == 4_000


def test_prepare_audio_keeps_channels_for_multichannel_models():
    wave = stereo()
    got, length = prepare_audio(wave, 48_000, 16_000, 400, channels=2)
    assert got.shape == (2, 4_000) and length == 4_000 and got.dtype == np.float32
    for c in range(2):
        np.testing.assert_allclose(
            got[c], prepare_mono(wave[c], 48_000, 16_000, 400)[0], rtol=0, atol=1e-6
        )
    short, length = prepare_audio(torch.from_numpy(wave[:, :100]), None, 16_000, 400, channels=2)
    assert short.shape == (2, 400) and length == 100 and np.all(short[:, 100:] == 0)


@pytest.mark.parametrize(
    ("wave", "channels", "match"),
    [
        (np.zeros(1000, np.float32), 2, r"2-channel audio.*mono.*mono=False"),
        (np.zeros((3, 1000), np.float32), 2, r"found 3 channels.*Select or mix"),
        (np.zeros((1000, 2), np.float32), 2, r"\(S, C\).*wave\.T"),
        (np.zeros((1000, 2), np.float32), 1, r"\(S, C\).*wave\.T"),
        (np.zeros((1, 2, 1000), np.float32), 2, r"\(S,\) or \(C, S\)"),
    ],
)
def test_prepare_audio_errors_name_the_fix(wave: np.ndarray, channels: int, match: str):
    with pytest.raises(ValueError, match=match):
        prepare_audio(wave, None, 16_000, 400, channels=channels)
