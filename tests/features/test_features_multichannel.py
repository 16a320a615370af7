"""Multichannel frontends: per-channel bit identity, channel checks, and ILD / IPD against numpy."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from echoic.errors import ConfigError
from echoic.features.base import build_frontend
from echoic.features.interchannel import phase_difference, pooling_weights
from echoic.types import AudioBatch

SR = 16000
SPECTRAL = [
    pytest.param("kaldi_fbank", {}, id="kaldi"),
    pytest.param(
        "kaldi_fbank",
        {"window": "hanning", "use_energy": True, "mean": -4.2, "std": 9.1},
        id="kaldi-energy",
    ),
    pytest.param("logmel", {}, id="logmel"),
    pytest.param("logmel", {"n_fft": 512, "log": "db", "mean": 1.5, "std": 4.0}, id="logmel-db"),
]


def realish(n: int, seed: int = 0) -> np.ndarray:
    """``(n,)`` float32 "real-ish" audio: 1/f noise plus a few harmonics under an envelope."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum[1:] /= np.sqrt(np.arange(1, spectrum.shape[0]))
    noise = np.fft.irfft(spectrum, n)
    t = np.arange(n) / SR
    harmonics = sum(np.sin(2 * np.pi * 220 * k * t + k) / k for k in range(1, 6))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 1.3 * t)
    x = noise / np.abs(noise).max() * 0.3 + 0.2 * envelope * harmonics
    return x.astype(np.float32)


def stereo_batch(lengths: tuple[int, ...] = (20_000, 13_337, 5_000)) -> AudioBatch:
    """``(B, 2, S)`` batch of different lengths, padding filled with 0.5 (must not leak)."""
    longest = max(lengths)
    waveform = torch.full((len(lengths), 2, longest), 0.5)
    for i, n in enumerate(lengths):
        waveform[i, 0, :n] = torch.from_numpy(realish(n, seed=i))
        waveform[i, 1, :n] = torch.from_numpy(realish(n, seed=10 + i))
    return AudioBatch(waveform, torch.tensor(lengths), SR)


@pytest.mark.parametrize(("name", "config"), SPECTRAL)
def test_each_channel_equals_the_mono_frontend_bit_for_bit(name: str, config: dict[str, Any]):
    batch = stereo_batch()
    stereo = build_frontend(name, {**config, "channels": 2})
    mono = build_frontend(name, config)
    features = stereo(batch)
    assert stereo.out_channels == 2 and features.n_channels == 2
    assert features.values.shape == (3, 2, mono.n_bins, max(features.lengths.tolist()))
    for c in range(2):
        alone = mono(AudioBatch(batch.waveform[:, c].clone(), batch.lengths, SR))
        assert torch.equal(features.values[:, c], alone.values), f"channel {c} differs"
        assert torch.equal(features.lengths, alone.lengths)


@pytest.mark.parametrize("interchannel", ["ild", "ipd", "ild+ipd"])
def test_interchannel_channels_are_named_counted_and_zero_on_padding(interchannel: str):
    frontend = build_frontend("logmel", {"channels": 3, "interchannel": interchannel})
    expected = ["channel0", "channel1", "channel2"]
    if "ild" in interchannel:
        expected += ["ild1", "ild2"]
    if "ipd" in interchannel:
        expected += ["ipd_cos1", "ipd_sin1", "ipd_cos2", "ipd_sin2"]
    assert list(frontend.channel_names) == expected
    assert frontend.out_channels == len(expected)
    waveform = torch.stack([stereo_batch().waveform[:, 0]] * 3, dim=1)
    waveform[:, 2] *= 0.25
    features = frontend(AudioBatch(waveform, torch.tensor([20_000, 13_337, 5_000]), SR))
    assert features.values.shape[1] == len(expected)
    for i, n in enumerate(features.lengths.tolist()):
        assert torch.all(features.values[i, :, :, n:] == 0.0)
    assert torch.isfinite(features.values).all()


def test_mono_frontends_keep_rejecting_multichannel_audio():
    batch = AudioBatch(torch.zeros(1, 2, 8000), torch.tensor([8000]), SR)
    for name in ("logmel", "kaldi_fbank"):
        with pytest.raises(ValueError, match=r"mono.*2 channels.*mono=True"):
            build_frontend(name)(batch)


@pytest.mark.parametrize(
    "waveform", [torch.zeros(1, 8000), torch.zeros(1, 3, 8000)], ids=["mono", "three"]
)
def test_a_two_channel_frontend_rejects_other_channel_counts(waveform: torch.Tensor):
    frontend = build_frontend("kaldi_fbank", {"channels": 2})
    found = 1 if waveform.ndim == 2 else 3
    with pytest.raises(
        ValueError, match=rf"2 channels.*\(B, 2, S\).*found {found}.*mono=False.*channels={found}"
    ):
        frontend(AudioBatch(waveform, torch.tensor([8000]), SR))


@pytest.mark.parametrize(
    ("name", "config", "match"),
    [
        ("logmel", {"channels": 0}, "channels must be an integer >= 1"),
        ("logmel", {"interchannel": "ild"}, "needs channels >= 2"),
        ("kaldi_fbank", {"channels": 2, "interchannel": "ild+ipds"}, r"mean 'ild\+ipd'"),
        ("kaldi_fbank", {"channels": 2, "interchannel": "ild", "use_log_fbank": False}, "log"),
    ],
)
def test_channel_settings_are_validated(name: str, config: dict[str, Any], match: str):
    with pytest.raises(ConfigError, match=match):
        build_frontend(name, config)


def numpy_log_mel_db(x: np.ndarray, frontend: Any) -> np.ndarray:
    """``(F, T)`` dB log-mel of ``x`` computed in float64 numpy with the frontend's window / bank."""
    config = frontend.config
    n_frames = 1 + (x.shape[0] - config.win_length) // config.hop_length
    index = np.arange(config.win_length)[None, :] + config.hop_length * np.arange(n_frames)[:, None]
    frames = x.astype(np.float64)[index] * frontend.window.double().numpy()
    power = np.abs(np.fft.rfft(frames, n=config.n_fft)) ** 2
    mel = power @ frontend.mel_bank.double().numpy()
    return (10.0 * np.log10(mel + config.log_offset)).T


def test_ild_of_a_panned_source_matches_numpy_and_the_gain():
    gain = 0.5  # channel 1 = 0.5 x channel 0: -6.02 dB
    source = realish(24_000, seed=3)
    frontend = build_frontend(
        "logmel", {"log": "db", "channels": 2, "interchannel": "ild", "n_mels": 64}
    )
    waveform = torch.from_numpy(np.stack([source, gain * source]))[None]
    features = frontend(AudioBatch(waveform, torch.tensor([source.shape[0]]), SR))
    ild = features.values[0, 2].double().numpy()
    expected = numpy_log_mel_db(gain * source, frontend) - numpy_log_mel_db(source, frontend)
    error = float(np.abs(ild - expected).max())
    assert error < 1e-4, error  # measured 2.4e-6 dB
    mel_db = numpy_log_mel_db(source, frontend)
    energetic = mel_db > -20.0  # mel energy > 1e-2, where the log offset (1e-6) is negligible
    assert energetic.mean() > 0.9
    gain_error = float(np.abs(ild[energetic] - 20 * math.log10(gain)).max())
    assert gain_error < 2e-3, gain_error  # measured 1.0e-3 dB: the log offset at -20 dB


def test_kaldi_ild_is_the_log_energy_ratio_over_std():
    gain, std = 2.0, 4.0
    source = realish(16_000, seed=4) * 0.2
    frontend = build_frontend(
        "kaldi_fbank", {"channels": 2, "interchannel": "ild", "mean": -3.0, "std": std}
    )
    waveform = torch.from_numpy(np.stack([source, gain * source]))[None]
    values = frontend(AudioBatch(waveform, torch.tensor([16_000]), SR)).values[0]
    log_energy = values[0] * std - 3.0
    energetic = log_energy > math.log(1e-5)  # well above the float32-eps floor of Kaldi's log
    assert energetic.float().mean() > 0.9
    expected = 2 * math.log(gain) / std
    error = float((values[2][energetic] - expected).abs().max())
    assert error < 1e-5, error  # measured 2.4e-7
    torch.testing.assert_close(values[2], values[1] - values[0], rtol=0, atol=0)


def tones(n: int, bins: list[int], n_fft: int, seed: int = 0) -> np.ndarray:
    """``(n,)`` float64 sum of tones centred on FFT bins ``bins`` of an ``n_fft``-point FFT."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return sum(
        rng.uniform(0.05, 0.3) * np.cos(2 * np.pi * k * t / n_fft + rng.uniform(0, 2 * np.pi))
        for k in bins
    )


def test_ipd_of_a_delay_is_cos_and_minus_sin_of_two_pi_f_tau():
    # periodic Hann over exactly n_fft samples: a bin-centred tone leaks only into bins k-1..k+1
    frontend = build_frontend("logmel", {"channels": 2, "interchannel": "ipd"})
    bins, delay = [10, 25, 47, 80, 133, 170], 3  # tau = 3 / 16000 s
    n = 8_000 + delay
    signal = tones(n, bins, frontend.config.n_fft, seed=5)
    left, right = signal[delay:], signal[: n - delay]  # right[t] = left[t - delay]
    waveform = torch.from_numpy(np.stack([left, right]).astype(np.float32))
    n_frames = frontend.num_frames(n - delay)
    spectra = [frontend.complex_spectrum(waveform[c][None], n_frames) for c in range(2)]
    cos, sin = phase_difference(spectra[1], spectra[0])
    freqs = np.array(bins) * SR / frontend.config.n_fft
    angle = 2 * np.pi * freqs * delay / SR
    cos_error = (cos[0, bins] - torch.from_numpy(np.cos(angle)).float()[:, None]).abs().max()
    sin_error = (sin[0, bins] + torch.from_numpy(np.sin(angle)).float()[:, None]).abs().max()
    assert max(float(cos_error), float(sin_error)) < 1e-5, (cos_error, sin_error)  # measured 9e-8


def test_ipd_is_pooled_with_normalised_mel_weights():
    frontend = build_frontend("logmel", {"channels": 2, "interchannel": "ipd", "n_mels": 40})
    config = frontend.config
    left, right = realish(9_000, seed=6), realish(9_000, seed=7)
    waveform = torch.from_numpy(np.stack([left, right]))[None]
    values = frontend(AudioBatch(waveform, torch.tensor([9_000]), SR)).values[0]
    n_frames = values.shape[-1]
    index = np.arange(config.win_length)[None, :] + config.hop_length * np.arange(n_frames)[:, None]
    window = frontend.window.double().numpy()
    spectra = [
        np.fft.rfft(x.astype(np.float64)[index] * window, n=config.n_fft) for x in (left, right)
    ]
    cross = spectra[1] * np.conj(spectra[0])
    unit = cross / np.abs(cross)
    bank = frontend.mel_bank.double().numpy()
    weights = bank / bank.sum(0, keepdims=True)
    assert np.allclose(pooling_weights(frontend.mel_bank).double().numpy(), weights, atol=1e-6)
    expected_cos, expected_sin = (unit.real @ weights).T, (unit.imag @ weights).T
    cos_error = float(np.abs(values[2].double().numpy() - expected_cos).max())
    sin_error = float(np.abs(values[3].double().numpy() - expected_sin).max())
    assert max(cos_error, sin_error) < 1e-4, (cos_error, sin_error)  # measured 2.3e-6
    assert float(values[2:].abs().max()) <= 1.0 + 1e-6


def test_kaldi_ipd_of_a_delay_and_of_identical_channels():
    frontend = build_frontend("kaldi_fbank", {"channels": 2, "interchannel": "ipd"})
    n_fft = frontend.config.fft_length
    bins, delay = [20, 45, 90, 150, 200], 2
    n = 8_000 + delay
    signal = tones(n, bins, n_fft, seed=8)
    left, right = signal[delay:], signal[: n - delay]
    waveform = torch.from_numpy(np.stack([left, right]).astype(np.float32))
    n_frames = frontend.num_frames(n - delay)
    spectra = [frontend.complex_spectrum(waveform[c][None], n_frames) for c in range(2)]
    cos, sin = phase_difference(spectra[1], spectra[0])
    angle = torch.from_numpy(2 * np.pi * np.array(bins) / n_fft * delay).float()[:, None]
    error = max(
        float((cos[0, bins] - angle.cos()).abs().max()),
        float((sin[0, bins] + angle.sin()).abs().max()),
    )
    # not exact (DC removal, negative-frequency leakage through the povey window): 1.7e-4 measured
    assert error < 2e-3, error
    same = torch.from_numpy(np.stack([left, left]).astype(np.float32))[None]
    values = frontend(AudioBatch(same, torch.tensor([n - delay]), SR)).values[0]
    covered = frontend.mel_bank.sum(0) > 0
    assert float((values[2][covered] - 1.0).abs().max()) < 1e-5
    assert float(values[3].abs().max()) < 1e-5
    assert torch.all(values[2:, ~covered] == 0.0)  # filters covering no FFT bin give 0
