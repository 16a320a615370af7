"""Mixing augmentation: sound over background at a random SNR, random gain, speed perturbation.

:class:`MixCollate` wraps a collate function (it runs in the loader workers): after the crops of a
batch are stacked it augments each row as :class:`~echoic.train.config.MixConfig` says. All draws
come from one generator seeded by ``(seed, MIX_STREAM, first clip number of the batch)``; clip
numbers are a pure function of the step (:mod:`echoic.train.data`), so an augmented batch is too,
whatever the worker count, and a resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import soxr
import torch

from echoic.errors import AudioError, ConfigError
from echoic.train.config import MixConfig
from echoic.train.data import Clip, CropDataset, collate_crops

__all__ = ["MixCollate", "check_mix", "mix_rows", "speed_perturb"]

MIX_STREAM = 7
EPS = 1e-10


def check_mix(config: MixConfig) -> None:
    """Raise :class:`ConfigError` for ranges that cannot be drawn from."""
    for name in ("snr_db", "gain_db"):
        low_high = getattr(config, name)
        if len(low_high) != 2 or low_high[0] > low_high[1]:
            raise ConfigError(
                f"data.mix.{name} must be [low, high] with low <= high; found {list(low_high)}."
            )
    if not 0.0 <= config.probability <= 1.0:
        raise ConfigError(f"data.mix.probability must be in [0, 1]; found {config.probability}.")
    if not 0.0 <= config.speed < 0.5:
        raise ConfigError(
            f"data.mix.speed must be in [0, 0.5) (a relative change, e.g. 0.05); "
            f"found {config.speed}."
        )


def speed_perturb(
    x: np.ndarray, factor: float, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """``x`` (S,) played ``factor`` times faster (pitch up by ``factor`` too), then cropped at a
    random offset or tiled back to ``S`` samples."""
    n = x.shape[-1]
    if factor == 1.0 or n < 2:
        return x
    y = soxr.resample(x.astype(np.float32), sample_rate, sample_rate / factor, quality="HQ")
    if y.shape[-1] >= n:
        offset = int(rng.integers(0, y.shape[-1] - n + 1))
        return np.asarray(y[offset : offset + n], dtype=np.float32)
    return np.tile(y, -(-n // max(y.shape[-1], 1)))[:n].astype(np.float32)


def mix_rows(
    waveform: np.ndarray,
    lengths: np.ndarray,
    clip_index: np.ndarray,
    config: MixConfig,
    sample_rate: int,
    rng: np.random.Generator,
    background: Callable[[np.random.Generator, int], np.ndarray | None] | None = None,
) -> np.ndarray:
    """Augmented copy of ``waveform`` (N, S) float32 (module docstring).

    ``background(rng, samples)`` returns a background crop from a list, or None (then, as
    without a list, another clip's row of the batch is the background). Only the first
    ``lengths[i]`` samples of a row are touched.
    """
    out = waveform.astype(np.float32, copy=True)
    original = waveform
    rows = out.shape[0]
    for i in range(rows):
        n = int(lengths[i])
        if n <= 0:
            continue
        factor = float(rng.uniform(1.0 - config.speed, 1.0 + config.speed)) if config.speed else 1.0
        x = speed_perturb(out[i, :n], factor, sample_rate, rng)
        if rng.random() < config.probability:
            snr = float(rng.uniform(*config.snr_db))
            noise = background(rng, n) if background is not None else None
            if noise is None:
                others = np.flatnonzero(clip_index != clip_index[i])
                if others.size:
                    j = int(others[rng.integers(others.size)])
                    noise = _fit(original[j, : int(lengths[j])], n, rng)
            if noise is not None:
                x = x + scale_to_snr(x, noise, snr)
        gain = float(rng.uniform(*config.gain_db))
        out[i, :n] = x * np.float32(10.0 ** (gain / 20.0))
    return out


def scale_to_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``noise`` scaled so that ``10 log10(P(signal) / P(scaled noise)) = snr_db`` (unchanged
    when either is silent)."""
    p_signal = float(np.mean(np.square(signal, dtype=np.float64)))
    p_noise = float(np.mean(np.square(noise, dtype=np.float64)))
    if p_signal < EPS or p_noise < EPS:
        return np.zeros_like(signal)
    scale = np.sqrt(p_signal / (p_noise * 10.0 ** (snr_db / 10.0)))
    return (noise * scale).astype(np.float32)


def _fit(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray | None:
    """``x`` cropped at a random offset or tiled to ``n`` samples (None if empty)."""
    if x.shape[-1] == 0:
        return None
    if x.shape[-1] >= n:
        offset = int(rng.integers(0, x.shape[-1] - n + 1))
        return x[offset : offset + n]
    return np.tile(x, -(-n // x.shape[-1]))[:n]


class MixCollate:
    """``collate(items)`` then :func:`mix_rows` on the stacked waveform (mono only).

    backgrounds: clips to draw backgrounds from (``data.mix.backgrounds``); empty: the batch.
    """

    def __init__(
        self,
        config: MixConfig,
        seed: int,
        sample_rate: int,
        backgrounds: Sequence[Clip] = (),
        collate: Callable[[list[dict[str, Any]]], dict[str, Any]] = collate_crops,
    ) -> None:
        check_mix(config)
        self.config = config
        self.seed = int(seed)
        self.sample_rate = int(sample_rate)
        self.collate = collate
        self.backgrounds = list(backgrounds)
        self._reader = (
            CropDataset(self.backgrounds, sample_rate, crop_s=1.0, seed=seed)
            if self.backgrounds
            else None
        )

    def _background(self, rng: np.random.Generator, samples: int) -> np.ndarray | None:
        if self._reader is None:
            return None
        clip = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
        self._reader.crop = samples
        try:
            audio, _ = self._reader.load_crops(clip, rng)
        except (AudioError, OSError, RuntimeError, ValueError):
            return None  # an unreadable background: the batch supplies one instead
        return audio[0]

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.collate(items)
        waveform = batch["waveform"]
        if waveform.ndim != 2:
            raise ConfigError(
                f"data.mix works on mono crops; found a batch of shape {tuple(waveform.shape)} "
                "(a multichannel frontend). Turn data.mix.enabled off for it."
            )
        rng = np.random.default_rng([self.seed, MIX_STREAM, int(items[0]["number"])])
        mixed = mix_rows(
            waveform.numpy(),
            batch["lengths"].numpy(),
            batch["clip_index"].numpy(),
            self.config,
            self.sample_rate,
            rng,
            self._background if self._reader is not None else None,
        )
        batch["waveform"] = torch.from_numpy(mixed)
        return batch
