"""The spatial_logmel frontend and the GCC-PHAT / intensity-vector cues, against analytic values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from echoic.errors import ConfigError
from echoic.features.base import build_frontend
from echoic.features.interchannel import pooling_weights
from echoic.types import AudioBatch

SR = 16000


def noise(n: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def features(frontend: torch.nn.Module, channels: list[np.ndarray]) -> torch.Tensor:
    """``(C', F, T)`` values of one clip of stacked ``channels``."""
    waveform = torch.from_numpy(np.stack(channels).astype(np.float32))[None]
    batch = AudioBatch(waveform, torch.tensor([waveform.shape[-1]]), SR)
    return frontend(batch).values[0]


def test_defaults_are_binaural_log_mel_plus_ild_and_ipd():
    frontend = build_frontend("spatial_logmel")
    assert frontend.channel_names == ("channel0", "channel1", "ild1", "ipd_cos1", "ipd_sin1")
    assert frontend.out_channels == 5 and frontend.n_bins == 128
    foa = build_frontend("spatial_logmel", {"channels": 4, "interchannel": "ild+iv"})
    assert foa.channel_names[4:] == ("ild1", "ild2", "ild3", "iv1", "iv2", "iv3")


def test_ild_is_negative_when_the_left_channel_is_louder():
    frontend = build_frontend("spatial_logmel")
    source = noise(16_000, seed=1)
    values = features(frontend, [source, 0.25 * source])  # left (channel 0) 12 dB louder
    ild = values[2]
    quieter_db = values[1] * frontend.config.std + frontend.config.mean
    energetic = quieter_db > -30.0  # where the log offset (1e-6 = -60 dB) is negligible
    assert energetic.float().mean() > 0.9
    expected = 20 * math.log10(0.25) / frontend.config.std  # dB over std
    assert float(ild[energetic].max()) < 0.0
    assert float((ild[energetic] - expected).abs().max()) < 1e-3  # measured 1.8e-4


def test_ipd_of_a_delayed_pure_tone_is_the_analytic_phase():
    frontend = build_frontend("spatial_logmel", {"interchannel": "ipd"})
    frequency, delay_s = 1000.0, 0.37e-3  # a fractional delay: 5.92 samples
    t = np.arange(12_000) / SR
    left = 0.3 * np.sin(2 * np.pi * frequency * t)
    right = 0.3 * np.sin(2 * np.pi * frequency * (t - delay_s))
    values = features(frontend, [left, right])
    weights = pooling_weights(frontend.mel_bank)  # (K, F)
    bin_hz = torch.arange(weights.shape[0]) * SR / frontend.config.n_fft
    centre = (weights * bin_hz[:, None]).sum(0)
    band = int((centre - frequency).abs().argmin())  # the mel band around the tone
    phase = 2 * math.pi * frequency * delay_s
    cos, sin = values[2, band], values[3, band]
    assert float((cos - math.cos(phase)).abs().max()) < 1e-4  # measured 8e-7
    assert float((sin + math.sin(phase)).abs().max()) < 1e-4  # right lags: phase -2π f τ


@pytest.mark.parametrize("delay", [4, -3])
def test_gcc_phat_peaks_at_the_delay_in_samples(delay: int):
    frontend = build_frontend("spatial_logmel", {"interchannel": "gcc"})
    assert frontend.channel_names == ("channel0", "channel1", "gcc1")
    source = noise(16_000 + 10, seed=2)
    left = source[5:16_005]
    right = source[5 - delay : 16_005 - delay]  # right[t] = left[t - delay]
    gcc = features(frontend, [left, right])[2]  # (F, T): bin i = lag i - F // 2
    peaks = gcc.argmax(dim=0) - frontend.n_bins // 2
    assert peaks.tolist() == [delay] * gcc.shape[1]
    assert float(gcc.max()) <= 1.0 + 1e-5


def test_intensity_vectors_of_an_ambisonic_plane_wave_are_its_direction():
    frontend = build_frontend("spatial_logmel", {"channels": 4, "interchannel": "iv"})
    direction = np.array([0.48, -0.6, 0.64])  # unit: 0.2304 + 0.36 + 0.4096
    source = noise(12_000, seed=3)
    omni = source  # SN3D first order: W = s, dipoles = s times the direction cosines
    values = features(frontend, [omni, *(u * source for u in direction)])
    covered = pooling_weights(frontend.mel_bank).sum(0) > 0  # mel bands holding an FFT bin
    iv = values[4:, covered]  # (3, F', T)
    expected = torch.tensor(direction, dtype=torch.float32)[:, None, None]
    assert float((iv - expected).abs().max()) < 1e-4  # measured 1.7e-6
    assert torch.all(values[4:, ~covered] == 0)


def test_mono_audio_and_mono_configs_are_refused_with_the_fix():
    frontend = build_frontend("spatial_logmel")
    mono = AudioBatch(torch.zeros(1, 8000), torch.tensor([8000]), SR)
    with pytest.raises(ValueError, match=r"2 channels.*\(B, 2, S\).*found 1.*mono=False"):
        frontend(mono)
    with pytest.raises(ConfigError, match=r"channels must be >= 2.*'logmel' frontend"):
        build_frontend("spatial_logmel", {"channels": 1, "interchannel": "none"})
    with pytest.raises(ConfigError, match="channels=4"):
        build_frontend("spatial_logmel", {"interchannel": "iv"})
    with pytest.raises(ConfigError, match="Did you mean 'ild\\+ipd'"):
        build_frontend("spatial_logmel", {"interchannel": "ipd+ild"})
    with pytest.raises(ConfigError, match="n_fft >= 600"):
        build_frontend("logmel", {"channels": 2, "interchannel": "gcc", "n_mels": 600})(
            AudioBatch(torch.zeros(1, 2, 8000), torch.tensor([8000]), SR)
        )


def test_spatial_cues_are_batch_invariant_and_zero_on_padding():
    frontend = build_frontend("spatial_logmel", {"interchannel": "ild+ipd+gcc"})
    a = np.stack([noise(9_000, 4), noise(9_000, 5)])
    b = np.stack([noise(5_321, 6), noise(5_321, 7)])
    waveform = torch.full((2, 2, 9_000), 0.5)
    waveform[0] = torch.from_numpy(a)
    waveform[1, :, :5_321] = torch.from_numpy(b)
    together = frontend(AudioBatch(waveform, torch.tensor([9_000, 5_321]), SR))
    alone = features(frontend, list(b))
    n = alone.shape[-1]
    torch.testing.assert_close(together.values[1, :, :, :n], alone, rtol=0, atol=1e-5)
    assert torch.all(together.values[1, :, :, n:] == 0)
