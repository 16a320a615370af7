"""A small deterministic soundscape mixer: energy envelopes, event placement, mixing.

Why not ``scaper``: scaper 1.6.5 (the current PyPI release) fails on numpy 2 (it calls the removed
``np.Inf`` while instantiating an event), needs ``soxbindings``, which has no wheel for Python 3.11
here and only builds against ``libsox-dev``, and pulls in pandas 3, jams, scipy and pysox. The
mixing this task needs (place trimmed clips at chosen times and gains over a background, write
onset/offset labels) is a few dozen lines with numpy.

Envelope (all at the source's own rate, so labels do not depend on the output rate): the signal is
cut into non-overlapping 10 ms frames; a frame is *active* when its mean power is within
``ACTIVE_RANGE_DB`` (30 dB) of the loudest frame and above ``ABSOLUTE_FLOOR_DB`` (-60 dBFS). The
event runs from the start of the first active frame to the end of the last one; gaps inside (a dog's
two barks) stay inside the event, as in scaper's labels for whole source clips.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME_S = 0.010
ACTIVE_RANGE_DB = 30.0
ABSOLUTE_FLOOR_DB = -60.0
FADE_S = 0.005


@dataclass(frozen=True)
class Envelope:
    """Where a source clip is active, in seconds, and its loudness there.

    start_s/end_s: first active frame start, last active frame end.
    rms_db: RMS level (dBFS) of the audio between them.
    active_fraction: share of all frames that are active.
    min_frame_db: level of the quietest frame (very low = digital silence somewhere).
    """

    start_s: float
    end_s: float
    rms_db: float
    active_fraction: float
    min_frame_db: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def frame_levels_db(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """``(S,)`` audio → ``(n_frames,)`` mean power per 10 ms frame in dBFS (a partial last frame is
    dropped)."""
    hop = max(round(FRAME_S * sample_rate), 1)
    n = x.shape[0] // hop
    frames = x[: n * hop].astype(np.float64).reshape(n, hop)
    return 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def envelope(x: np.ndarray, sample_rate: int) -> Envelope:
    """Active region of ``(S,)`` audio (see the module docstring for the rule)."""
    levels = frame_levels_db(x, sample_rate)
    if levels.size == 0:
        raise ValueError("audio shorter than one 10 ms frame has no envelope")
    threshold = max(float(levels.max()) - ACTIVE_RANGE_DB, ABSOLUTE_FLOOR_DB)
    active = np.flatnonzero(levels > threshold)
    hop = max(round(FRAME_S * sample_rate), 1)
    if active.size == 0:  # silent clip: nothing above the absolute floor
        return Envelope(0.0, 0.0, float(levels.max()), 0.0, float(levels.min()))
    a, b = int(active[0]) * hop, (int(active[-1]) + 1) * hop
    seg = x[a:b].astype(np.float64)
    rms_db = 10.0 * np.log10(np.mean(seg**2) + 1e-12)
    return Envelope(
        start_s=a / sample_rate,
        end_s=b / sample_rate,
        rms_db=float(rms_db),
        active_fraction=float(active.size / levels.size),
        min_frame_db=float(levels.min()),
    )


def place_events(
    durations_s: list[float], scene_s: float, min_gap_s: float, rng: np.random.Generator
) -> list[float]:
    """Onsets (seconds) for non-overlapping events of the given lengths, in the given order.

    The free time ``scene_s - sum(durations) - min_gap_s * (n + 1)`` is split at random
    (uniform spacings) into ``n + 1`` extra gaps; raises if the events do not fit.
    """
    n = len(durations_s)
    free = scene_s - sum(durations_s) - min_gap_s * (n + 1)
    if free < 0:
        raise ValueError(f"{n} events of {sum(durations_s):.2f} s do not fit in {scene_s} s")
    cuts = np.sort(rng.uniform(0.0, free, size=n))
    extra = np.diff(np.concatenate([[0.0], cuts]))
    onsets, t = [], 0.0
    for i in range(n):
        t += min_gap_s + float(extra[i])
        onsets.append(t)
        t += durations_s[i]
    return onsets


def faded(x: np.ndarray, sample_rate: int, fade_s: float = FADE_S) -> np.ndarray:
    """``(S,)`` copy with linear fade-in and fade-out of ``fade_s`` (avoids clicks at cuts)."""
    y = x.astype(np.float64, copy=True)
    n = min(max(round(fade_s * sample_rate), 1), y.shape[0] // 2)
    if n > 0:
        ramp = np.linspace(0.0, 1.0, n + 2)[1:-1]
        y[:n] *= ramp
        y[-n:] *= ramp[::-1]
    return y


def add_at(mix: np.ndarray, x: np.ndarray, start: int) -> None:
    """Add ``x`` into ``mix`` from sample ``start`` (in place), dropping what runs past the end."""
    end = min(start + x.shape[0], mix.shape[0])
    if end > start:
        mix[start:end] += x[: end - start]


def gain_for(level_db: float, target_db: float) -> float:
    """Linear gain that moves a signal at ``level_db`` RMS to ``target_db``."""
    return float(10.0 ** ((target_db - level_db) / 20.0))
