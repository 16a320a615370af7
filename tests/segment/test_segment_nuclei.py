"""The energy-envelope syllable-nucleus baseline on tone-burst trains with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from echoic.embed.nuclei import NucleiConfig, intensity_db, syllable_nuclei
from echoic.errors import ConfigError

SR = 16000


def burst(
    seconds: float, amplitude: float, freq: float = 200.0, noise: bool = False, seed: int = 0
):
    """A flat-topped burst with 10 ms ramps: a tone, or white noise."""
    n = int(seconds * SR)
    if noise:
        x = np.random.default_rng(seed).standard_normal(n) * amplitude / np.sqrt(2)
    else:
        x = amplitude * np.sin(2 * np.pi * freq * np.arange(n) / SR)
    ramp = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.01 * SR))
    return x * ramp


def train(amplitudes: list[float], on: float = 0.15, off: float = 0.12, **kwargs):
    """Bursts separated by near-silence; returns the clip and each burst's (onset, offset) s."""
    rng = np.random.default_rng(0)
    pieces, spans, t = [], [], 0.0
    for i, amplitude in enumerate(amplitudes):
        pieces += [np.zeros(int(off * SR)), burst(on, amplitude, seed=i, **kwargs)]
        spans.append((t + off, t + off + on))
        t += off + on
    pieces.append(np.zeros(int(off * SR)))
    clip = np.concatenate(pieces)
    return (clip + 1e-4 * rng.standard_normal(clip.size)).astype(np.float32), spans


def test_counts_bursts_and_places_nuclei_and_extents() -> None:
    amplitudes = [0.2, 0.5, 0.3, 0.4, 0.25, 0.45, 0.35]  # within 8 dB of each other
    clip, spans = train(amplitudes)
    found = syllable_nuclei(clip, SR)
    assert len(found) == len(amplitudes)
    for nucleus, start, end, (onset, offset) in zip(
        found.nuclei_s, found.starts_s, found.ends_s, spans, strict=True
    ):
        assert onset <= nucleus <= offset
        assert abs(start - onset) < 0.04 and abs(end - offset) < 0.04
    assert (found.starts_s[1:] >= found.ends_s[:-1]).all()  # the pauses belong to no syllable


def test_dip_requirement_between_touching_bursts() -> None:
    t = np.arange(int(0.6 * SR)) / SR
    tone = np.sin(2 * np.pi * 200 * t)
    pause = np.zeros(SR // 2)  # peaks must top the median intensity: mostly pauses here
    clip = np.concatenate([pause, tone, pause])

    def modulated(depth_db: float) -> np.ndarray:
        # two loud halves with a dip of depth_db in the middle (a raised-cosine valley)
        gain_db = -depth_db * np.exp(-(((t - 0.3) / 0.04) ** 2))
        x = clip.copy()
        x[pause.size : pause.size + t.size] *= 0.5 * 10 ** (gain_db / 20)
        return x.astype(np.float32)

    assert len(syllable_nuclei(modulated(0.0), SR)) == 1
    assert len(syllable_nuclei(modulated(1.0), SR)) == 1  # a dip under 2 dB: one nucleus
    deep = syllable_nuclei(modulated(12.0), SR)
    assert len(deep) == 2
    assert abs(deep.ends_s[0] - 0.8) < 0.02 and deep.ends_s[0] == deep.starts_s[1]  # at the dip
    assert len(syllable_nuclei(modulated(1.0), SR, NucleiConfig(min_dip_db=0.5))) == 2


def test_quiet_bursts_under_the_silence_threshold_are_not_nuclei() -> None:
    clip, _ = train([0.5, 0.5, 0.005, 0.5], off=0.3)  # the third is 40 dB down
    assert len(syllable_nuclei(clip, SR)) == 3
    assert len(syllable_nuclei(clip, SR, NucleiConfig(silence_db=60.0))) == 4


def test_voicing_check_keeps_tones_and_drops_noise() -> None:
    noise, _ = train([0.3] * 4, noise=True)
    tones, _ = train([0.3] * 4)
    voiced = NucleiConfig(voicing_threshold=0.45)
    assert len(syllable_nuclei(noise, SR)) == 4
    assert len(syllable_nuclei(noise, SR, voiced)) == 0
    assert len(syllable_nuclei(tones, SR, voiced)) == 4


def test_intensity_of_a_sine() -> None:
    x = 0.5 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)
    level, hop_s = intensity_db(x, SR)
    assert hop_s == 0.01 and level.size == 101
    middle = level[10:-10]
    np.testing.assert_allclose(middle, 10 * np.log10(0.25 / 2), atol=0.05)  # mean square A²/2
    assert level[0] < middle.min() - 2  # the first frame is half outside the clip


def test_edge_cases_and_errors() -> None:
    assert len(syllable_nuclei(np.zeros(SR, np.float32), SR)) == 0
    assert len(syllable_nuclei(np.zeros(0, np.float32), SR)) == 0
    with pytest.raises(ConfigError, match="NaN"):
        syllable_nuclei(np.array([0.1, np.nan, 0.2], np.float32), SR)
    with pytest.raises(ConfigError, match="mono"):
        syllable_nuclei(np.zeros((2, 100), np.float32), SR)
    with pytest.raises(ConfigError, match="pitch range"):
        NucleiConfig(min_pitch_hz=500, max_pitch_hz=100)
