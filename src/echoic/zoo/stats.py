"""Statistics over time of frame-level features: the shared core of the statistics baselines.

A statistics model turns a clip into frame descriptors ``(T, C)`` (log-mel bands, MFCCs, codeword
one-hots …) at the frontend's frame rate and summarises them: the scene embedding over the whole
clip, the native frames over a window of ``context_ms`` centred every ``frame_hop_ms``. Window sums
come from cumulative sums in float64, so every frame costs O(C) whatever the window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from echoic.config import to_dict
from echoic.errors import ConfigError
from echoic.features.base import Frontend
from echoic.types import AudioBatch
from echoic.zoo.base import NativeFrames, ZooModel


@dataclass
class ContextConfig:
    """Where the native frames of a statistics model sit: every ``frame_hop_ms`` (rounded to
    whole feature frames), each summarising ``context_ms`` of features centred on it."""

    frame_hop_ms: float = 40.0
    context_ms: float = 250.0


def window_means(values: torch.Tensor, centres: torch.Tensor, half: int) -> torch.Tensor:
    """Means of ``values`` ``(T, C)`` over rows ``[c - half, c + half]`` (clipped to ``[0, T)``).

    ``centres`` ``(N,)`` int64 row indices. Returns ``(N, C)`` float64.
    """
    values = values.to(torch.float64)
    total = torch.cat([values.new_zeros(1, values.shape[1]), values.cumsum(0)])
    lo = (centres - half).clamp(min=0)
    hi = (centres + half + 1).clamp(max=values.shape[0])
    return (total[hi] - total[lo]) / (hi - lo).to(torch.float64)[:, None]


def mean_std(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """``[mean, std]`` from first and second moments ``(..., C)`` → ``(..., 2C)``."""
    std = (second - first.square()).clamp_min(0.0).sqrt()
    return torch.cat([first, std], dim=-1)


class StatsModel(ZooModel):
    """A frontend + per-frame descriptors, summarised over time (see module docstring).

    Subclasses set ``frontend`` and ``context`` and implement :meth:`descriptors` and
    :meth:`summarise`.
    """

    frontend: Frontend
    context: ContextConfig
    config: Any  # the subclass's config dataclass (what ``identity_payload`` records)

    def _setup_geometry(self) -> None:
        self.sample_rate = self.frontend.sample_rate
        self.min_samples = self.frontend.min_samples
        hop_ms = 1000.0 * self.frontend.hop_s
        self._frame_step = max(1, round(self.context.frame_hop_ms / hop_ms))
        if self.context.context_ms <= 0:
            raise ConfigError(f"context_ms must be > 0; found {self.context.context_ms}")
        self._half = max(0, math.floor(self.context.context_ms / hop_ms / 2))
        self.frame_hop_ms = self._frame_step * hop_ms

    def features(self, clip: np.ndarray) -> torch.Tensor:
        """``(T, F)`` frontend features of one clip (``T ≥ 1`` as clips hold ≥ one frame); a
        multichannel frontend's ``(C, F, T)`` features come out channel by channel, ``(T, C·F)``."""
        wave = torch.from_numpy(clip)[None]
        out = self.frontend(AudioBatch(wave, torch.tensor([wave.shape[-1]]), self.sample_rate))
        values = out.values[0, ..., : int(out.lengths[0])]
        return values.reshape(-1, values.shape[-1]).T

    def descriptors(self, clip: np.ndarray) -> torch.Tensor:
        """``(T, C)`` per-frame descriptors whose window means are summarised."""
        raise NotImplementedError

    def identity_payload(self) -> dict[str, Any]:
        """The model name and its config dataclass (``self.config``): all the output depends on."""
        return {"model": self.name, "config": to_dict(self.config), "version": 1}

    def summarise(self, means: torch.Tensor) -> torch.Tensor:
        """Window means of descriptors ``(..., C)`` → embeddings ``(..., D)``."""
        raise NotImplementedError

    def native(self, clips: list[np.ndarray]) -> list[NativeFrames]:
        out = []
        first_ms = 1000.0 * self.frontend.first_centre_s
        hop_ms = 1000.0 * self.frontend.hop_s
        for clip in clips:
            desc = self.descriptors(clip).to(torch.float64)
            centres = torch.arange(0, desc.shape[0], self._frame_step)
            frames = self.summarise(window_means(desc, centres, self._half)).float()
            scene = self.summarise(desc.mean(0, keepdim=True))[0].float()
            times = first_ms + centres.to(torch.float64) * hop_ms
            out.append(NativeFrames(frames, times, scene))
        return out
