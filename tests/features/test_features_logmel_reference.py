"""Log-mel parity with the independent numpy reference in ``transformers.audio_utils``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from transformers.audio_utils import mel_filter_bank as reference_mel_filter_bank
from transformers.audio_utils import spectrogram, window_function

from echoic.features.base import build_frontend
from echoic.features.logmel import mel_filter_bank
from echoic.types import AudioBatch

WINDOW_NAMES = {"hann": "hann", "hamming": "hamming", "rectangular": "boxcar"}


def echoic_logmel(audio: np.ndarray, **config: Any) -> np.ndarray:
    """``(F, T)`` log-mel of one 16 kHz clip from the frontend under test."""
    frontend = build_frontend("logmel", config)
    batch = AudioBatch(torch.from_numpy(audio)[None], torch.tensor([len(audio)]), 16000)
    return frontend(batch).values[0].numpy()


def reference_logmel(
    audio: np.ndarray,
    n_fft: int,
    win_length: int,
    hop_length: int,
    n_mels: int,
    f_min: float,
    f_max: float | None,
    window: str,
    power: float,
    mel_scale: str,
    mel_norm: str | None,
    log: str,
    log_offset: float,
) -> np.ndarray:
    """``(F, T)`` the same settings computed by transformers (float64 numpy, frame by frame)."""
    bank = reference_mel_filter_bank(
        num_frequency_bins=n_fft // 2 + 1,
        num_mel_filters=n_mels,
        min_frequency=f_min,
        max_frequency=8000.0 if f_max is None else f_max,
        sampling_rate=16000,
        norm=mel_norm,
        mel_scale=mel_scale,
    )
    mel = spectrogram(
        audio,
        window_function(win_length, WINDOW_NAMES[window], periodic=True),
        frame_length=win_length,
        hop_length=hop_length,
        fft_length=n_fft,
        power=power,
        center=False,
        mel_filters=bank,
        mel_floor=0.0,
    )
    if log == "natural":
        return np.log(mel + log_offset)
    if log == "log10":
        return np.log10(mel + log_offset)
    return 20.0 / power * np.log10(mel + log_offset)


CASES = [
    pytest.param(
        {
            "n_fft": 400,
            "win_length": 400,
            "hop_length": 160,
            "n_mels": 128,
            "f_min": 0.0,
            "f_max": None,
            "window": "hann",
            "power": 2.0,
            "mel_scale": "htk",
            "mel_norm": None,
            "log": "natural",
            "log_offset": 1e-6,
        },
        id="htk-128-natural",
    ),
    pytest.param(
        {
            "n_fft": 512,
            "win_length": 400,
            "hop_length": 160,
            "n_mels": 80,
            "f_min": 50.0,
            "f_max": 7600.0,
            "window": "hann",
            "power": 2.0,
            "mel_scale": "slaney",
            "mel_norm": "slaney",
            "log": "log10",
            "log_offset": 1e-10,
        },
        id="slaney-80-log10-fft512",
    ),
    pytest.param(
        {
            "n_fft": 1024,
            "win_length": 1024,
            "hop_length": 320,
            "n_mels": 64,
            "f_min": 20.0,
            "f_max": 8000.0,
            "window": "hamming",
            "power": 1.0,
            "mel_scale": "slaney",
            "mel_norm": None,
            "log": "db",
            "log_offset": 1e-5,
        },
        id="slaney-64-magnitude-db",
    ),
    pytest.param(
        {
            "n_fft": 256,
            "win_length": 256,
            "hop_length": 128,
            "n_mels": 40,
            "f_min": 0.0,
            "f_max": None,
            "window": "rectangular",
            "power": 2.0,
            "mel_scale": "htk",
            "mel_norm": "slaney",
            "log": "natural",
            "log_offset": 1e-6,
        },
        id="htk-40-rectangular",
    ),
]


@pytest.mark.filterwarnings("ignore:At least one mel filter has all zero values")
@pytest.mark.parametrize("settings", CASES)
def test_logmel_matches_transformers(
    clips_16k: dict[str, np.ndarray], settings: dict[str, Any]
) -> None:
    # dB values are 10-20x larger than natural-log ones: compare them at the same relative precision
    tolerance = 1e-3 * (20.0 / settings["power"] / np.log(10) if settings["log"] == "db" else 1.0)
    for name, audio in clips_16k.items():
        ours = echoic_logmel(audio, **settings)
        reference = reference_logmel(audio, **settings)
        assert ours.shape == reference.shape, f"{name}: {ours.shape} != {reference.shape}"
        diff = float(np.abs(ours - reference).max())
        print(f"{name}: max|diff| {diff:.1e}")
        assert diff <= tolerance, f"{name}: max|diff| {diff:.2e} > {tolerance:.1e}"


@pytest.mark.parametrize(
    ("mel_scale", "mel_norm", "f_min", "f_max"),
    [("htk", None, 0.0, 8000.0), ("slaney", "slaney", 50.0, 7600.0), ("slaney", None, 0.0, 4000.0)],
)
def test_mel_filter_bank_matches_transformers(
    mel_scale: str, mel_norm: str | None, f_min: float, f_max: float
) -> None:
    ours = mel_filter_bank(257, 80, 16000, f_min, f_max, mel_scale, mel_norm).numpy()
    reference = reference_mel_filter_bank(257, 80, f_min, f_max, 16000, mel_norm, mel_scale)
    scale = float(np.abs(reference).max())
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-6 * scale)
