"""A classical syllable baseline: syllable nuclei from the intensity envelope (no model).

In the style of de Jong & Wempe (2009, "Praat script to detect syllable nuclei and measure
speech rate automatically", Behavior Research Methods 41(2)), in numpy:

1. **Intensity** in dB every ``hop_ms`` (10 ms): the Hann-weighted mean square over a
   ``window_ms`` (64 ms, Praat's window for a 50 Hz pitch floor) window centred on the frame.
2. **Silence**: frames more than ``silence_db`` (25 dB) below the 0.99 quantile of the intensity
   (the loudest sound, ignoring a few outlier bursts) are silent.
3. **Peaks**: local maxima of the intensity above the clip's median intensity plus
   ``peak_offset_db`` (0) and above the silence threshold are candidate nuclei.
4. **Dips**: going left to right, a candidate becomes a new nucleus only when the intensity between
   it and the previous nucleus dips at least ``min_dip_db`` (2 dB) below the lower of the two
   peaks; otherwise the two are one nucleus, kept at the higher peak. (The script checks the dip
   after each peak against that peak alone; both variants need a real valley between nuclei.)
5. **Voicing** (optional, ``voicing_threshold``; the script asks Praat for a pitch): a nucleus is
   kept only when the normalised autocorrelation of ``3 / min_pitch_hz`` seconds of audio around
   it peaks at ≥ ``voicing_threshold`` (Praat's default voicing threshold is 0.45) for a lag within
   the pitch range.

Boundaries lie at the intensity minimum between consecutive nuclei; each syllable also ends where
its sounding stretch does (the first silent frame), so silences belong to no syllable. Memory
stays at a few blocks of frames, whatever the file's length.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from echoic.errors import ConfigError

__all__ = ["Nuclei", "NucleiConfig", "intensity_db", "syllable_nuclei"]


@dataclass
class NucleiConfig:
    """Settings of :func:`syllable_nuclei` (see the module docstring)."""

    window_ms: float = 64.0
    hop_ms: float = 10.0
    silence_db: float = 25.0
    peak_offset_db: float = 0.0
    min_dip_db: float = 2.0
    voicing_threshold: float | None = None
    min_pitch_hz: float = 75.0
    max_pitch_hz: float = 600.0

    def __post_init__(self) -> None:
        if self.window_ms <= 0 or self.hop_ms <= 0:
            raise ConfigError(
                f"window_ms and hop_ms must be > 0; found {self.window_ms}, {self.hop_ms}."
            )
        if self.silence_db <= 0 or self.min_dip_db < 0:
            raise ConfigError(
                "silence_db (dB below the loudest sound) must be > 0 and min_dip_db >= 0; found "
                f"{self.silence_db}, {self.min_dip_db}."
            )
        if not 0 < self.min_pitch_hz < self.max_pitch_hz:
            raise ConfigError(
                "the pitch range needs 0 < min_pitch_hz < max_pitch_hz; found "
                f"{self.min_pitch_hz}, {self.max_pitch_hz}."
            )


@dataclass
class Nuclei:
    """Syllables of one clip: ``nuclei_s`` ``(S,)`` nucleus times and ``starts_s`` / ``ends_s``
    ``(S,)`` their extents, all in seconds and in time order."""

    nuclei_s: np.ndarray
    starts_s: np.ndarray
    ends_s: np.ndarray

    def __len__(self) -> int:
        return int(self.nuclei_s.shape[0])


def intensity_db(
    wave: np.ndarray, sample_rate: int, config: NucleiConfig | None = None, block: int = 4096
) -> tuple[np.ndarray, float]:
    """``(F,)`` intensity in dB (relative: 0 dB is a mean square of 1) of frames centred at
    ``f * hop`` (the audio is zero beyond its ends), and the hop in seconds. Computed
    ``block`` frames at a time, so memory does not grow with the clip."""
    config = config or NucleiConfig()
    hop = max(1, round(config.hop_ms * sample_rate / 1000))
    width = max(2, round(config.window_ms * sample_rate / 1000))
    window = np.hanning(width + 2)[1:-1]  # no zero weights at the ends
    window = window / window.sum()
    n_samples = int(wave.shape[0])
    n_frames = n_samples // hop + 1
    half = width // 2
    out = np.empty(n_frames, dtype=np.float64)
    for first in range(0, n_frames, block):
        last = min(first + block, n_frames)  # frames [first, last)
        lo, hi = first * hop - half, (last - 1) * hop - half + width  # their samples [lo, hi)
        piece = np.zeros(hi - lo, dtype=np.float64)
        src_lo, src_hi = max(lo, 0), min(hi, n_samples)
        if src_hi > src_lo:
            piece[src_lo - lo : src_hi - lo] = wave[src_lo:src_hi]
        frames = np.lib.stride_tricks.sliding_window_view(piece**2, width)[::hop]
        out[first:last] = frames[: last - first] @ window
    return 10.0 * np.log10(out + 1e-12), hop / sample_rate


def _peaks(values: np.ndarray) -> np.ndarray:
    """Indices of the local maxima of ``values`` (the middle frame of a flat top); the first
    and last runs are never peaks."""
    if values.size < 3:
        return np.zeros(0, dtype=np.int64)
    run_starts = np.concatenate([[0], np.flatnonzero(np.diff(values) != 0) + 1])
    run_ends = np.append(run_starts[1:], values.size)  # exclusive
    level = values[run_starts]
    top = np.flatnonzero((level[1:-1] > level[:-2]) & (level[1:-1] > level[2:])) + 1
    return ((run_starts[top] + run_ends[top] - 1) // 2).astype(np.int64)


def _voiced(wave: np.ndarray, centre: int, sample_rate: int, config: NucleiConfig) -> bool:
    """Whether the audio around sample ``centre`` is periodic within the pitch range."""
    assert config.voicing_threshold is not None
    half = round(1.5 * sample_rate / config.min_pitch_hz)
    piece = np.asarray(wave[max(0, centre - half) : centre + half], dtype=np.float64)
    piece = piece - piece.mean()
    shortest = max(1, int(sample_rate // config.max_pitch_hz))
    longest = min(int(np.ceil(sample_rate / config.min_pitch_hz)), piece.size // 2)
    best = 0.0
    for lag in range(shortest, longest + 1):
        a, b = piece[:-lag], piece[lag:]
        denom = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
        if denom > 0:
            best = max(best, float(np.dot(a, b)) / denom)
    return best >= config.voicing_threshold


def syllable_nuclei(
    wave: np.ndarray, sample_rate: int, config: NucleiConfig | None = None
) -> Nuclei:
    """Syllable nuclei and extents of a mono clip ``(S,)`` (module docstring)."""
    config = config or NucleiConfig()
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise ConfigError(f"expected a mono clip (S,); found shape {wave.shape}.")
    if not np.isfinite(wave).all():
        raise ConfigError("the clip holds NaN or inf samples; it cannot be segmented.")
    empty = Nuclei(np.zeros(0), np.zeros(0), np.zeros(0))
    if wave.size == 0 or not np.any(wave):
        return empty
    level, hop_s = intensity_db(wave, sample_rate, config)
    duration = wave.shape[0] / sample_rate
    silence = float(np.quantile(level, 0.99)) - config.silence_db
    sounding = level >= silence
    floor = max(float(np.median(level)) + config.peak_offset_db, silence)
    candidates = [int(p) for p in _peaks(level) if level[p] > floor]

    nuclei: list[int] = []
    for peak in candidates:
        if nuclei:
            last = nuclei[-1]
            dip = float(level[last : peak + 1].min())
            if min(level[last], level[peak]) - dip < config.min_dip_db:
                if level[peak] > level[last]:
                    nuclei[-1] = peak  # one nucleus: keep the higher peak
                continue
        nuclei.append(peak)
    if config.voicing_threshold is not None:
        centre = [round(p * hop_s * sample_rate) for p in nuclei]
        nuclei = [
            p for p, c in zip(nuclei, centre, strict=True) if _voiced(wave, c, sample_rate, config)
        ]
    if not nuclei:
        return empty

    # each nucleus's sounding stretch [onset, offset) of frames, and the valleys between nuclei
    peaks = np.asarray(nuclei)
    silent = np.flatnonzero(~sounding)
    onset = np.zeros(peaks.size, dtype=np.int64)
    offset = np.full(peaks.size, level.size, dtype=np.int64)
    if silent.size:
        at = np.searchsorted(silent, peaks)
        has_before = at > 0
        onset[has_before] = silent[at[has_before] - 1] + 1
        has_after = at < silent.size
        offset[has_after] = silent[at[has_after]]
    valleys = np.asarray(
        [a + int(np.argmin(level[a : b + 1])) for a, b in pairwise(peaks.tolist())],
        dtype=np.int64,
    )
    times = np.arange(level.size) * hop_s
    starts = times[onset] - hop_s / 2
    ends = times[offset - 1] + hop_s / 2
    starts[1:] = np.maximum(starts[1:], times[valleys])
    ends[:-1] = np.minimum(ends[:-1], times[valleys])
    return Nuclei(
        times[peaks],
        np.clip(starts, 0.0, duration),
        np.clip(ends, 0.0, duration),
    )
