"""Real clips from ../shared/data load at 16 kHz with the lengths their READMEs state."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from echoic.data import audio_info, load_audio, stream_audio


def fft_decimate_by_3(x: np.ndarray) -> np.ndarray:
    """Band-limited 3:1 resampling by FFT in numpy: a reference independent of soxr.

    Zero padding keeps the FFT's periodic wrap-around away from the clip's edges.
    """
    n_out = x.shape[0] // 3
    padded = np.concatenate([x.astype(np.float64), np.zeros(3 * 4800)])
    m = padded.shape[0] // 3
    spectrum = np.fft.rfft(padded[: 3 * m])[: m // 2 + 1]
    return np.fft.irfft(spectrum, m)[:n_out] / 3


def below(x: np.ndarray, rate: int, cutoff_hz: float) -> np.ndarray:
    """Zero every FFT bin above ``cutoff_hz`` (resamplers differ only in their transition band)."""
    spectrum = np.fft.rfft(x)
    spectrum[np.fft.rfftfreq(x.shape[0], 1 / rate) > cutoff_hz] = 0
    return np.fft.irfft(spectrum, x.shape[0])


DATA = Path(
    os.environ.get("ECHOIC_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data")
)


def first_rows(name: str, n: int) -> list[Path]:
    folder = DATA / name
    if not (folder / "meta.csv").exists():
        pytest.skip(f"real-audio data not found at {folder} (shared/data beside the repo)")
    with (folder / "meta.csv").open() as f:
        rows = list(csv.DictReader(f))
    step = max(len(rows) // n, 1)
    return [folder / row["file"] for row in rows[::step][:n]]


def test_esc50_opus_is_80001_samples_at_16k() -> None:
    for path in first_rows("esc50", 3):  # README: every clip decodes to exactly 80,001 samples
        assert audio_info(path).sample_rate == 16000
        x, rate = load_audio(path, sample_rate=16000)
        assert rate == 16000 and x.shape == (80001,) and x.dtype == np.float32
        assert np.isfinite(x).all()


def test_drums_opus_decodes_at_48k_and_resamples() -> None:
    for path in first_rows("drums", 3):  # README: Opus files decode at 48 kHz
        info = audio_info(path)
        assert (info.sample_rate, info.channels) == (48000, 1)
        native, _ = sf.read(path, dtype="float32")
        x, rate = load_audio(path, sample_rate=16000)
        assert rate == 16000
        assert abs(x.shape[0] - native.shape[0] / 3) <= 1
        assert 0.06 - 0.01 <= x.shape[0] / rate <= 12.0  # README: 0.06-12.00 s per clip
        reference = fft_decimate_by_3(native)
        n = min(reference.shape[0], x.shape[0])
        correlation = np.corrcoef(below(reference[:n], rate, 7000), below(x[:n], rate, 7000))
        assert correlation[0, 1] > 0.9999


def test_fsdd_flac_8k_upsampled() -> None:
    for path in first_rows("fsdd", 3):  # README: 8 kHz mono 16-bit FLAC, 0.14-2.28 s
        native, native_rate = sf.read(path, dtype="float32")
        assert native_rate == 8000
        x, rate = load_audio(path, sample_rate=16000)
        assert rate == 16000 and x.shape[0] == 2 * native.shape[0]
        assert 0.14 - 0.005 <= x.shape[0] / rate <= 2.28 + 0.005
        np.testing.assert_allclose(x[::2], native, atol=0.02)


def test_esc50_stream_equals_load() -> None:
    (path,) = first_rows("esc50", 1)
    expected, _ = load_audio(path, sample_rate=22050)
    blocks = list(stream_audio(path, 0.5, sample_rate=22050))
    assert len(blocks) == 11 and blocks[0].shape == (11025,)
    np.testing.assert_allclose(np.concatenate(blocks), expected, atol=1e-4, rtol=0)
