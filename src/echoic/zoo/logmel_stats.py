"""``logmel_stats``: mean and standard deviation of each log-mel band (a baseline, no training).

Log-mel: 16 kHz, 25 ms Hann frames every 10 ms, 64 HTK-mel bands, ``ln(power + 1e-6)``
(:mod:`echoic.features.logmel`). Scene embedding ``(2 * n_mels,)`` = ``[mean, std]`` of every band
over the whole clip; native frames = the same statistics over ``context_ms`` (250 ms) centred every
``frame_hop_ms`` (40 ms).

``channels`` C > 1 (the ``logmel_stats_2ch`` / ``logmel_stats_4ch`` cards, for the multichannel
spatial tasks) takes ``(C, S)`` clips and gives the same statistics for every channel's log-mel,
``(2 * n_mels * C,)``: ``[means of channel 0 … C-1, stds of channel 0 … C-1]``. Level differences
between channels show in the means; no phase or inter-channel cue is added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from echoic.config import from_dict
from echoic.features.base import build_frontend
from echoic.zoo.stats import ContextConfig, StatsModel, mean_std


@dataclass
class LogMelStatsConfig:
    """Settings of :class:`LogMelStats`."""

    sample_rate: int = 16000
    n_mels: int = 64
    win_ms: float = 25.0
    hop_ms: float = 10.0
    f_min: float = 0.0
    f_max: float | None = None
    frame_hop_ms: float = 40.0
    context_ms: float = 250.0
    channels: int = 1

    def frontend_config(self) -> dict[str, Any]:
        win = round(self.sample_rate * self.win_ms / 1000)
        n_fft = 1 << (win - 1).bit_length()
        return {
            "sample_rate": self.sample_rate,
            "n_fft": n_fft,
            "win_length": win,
            "hop_length": round(self.sample_rate * self.hop_ms / 1000),
            "n_mels": self.n_mels,
            "f_min": self.f_min,
            "f_max": self.f_max,
            "log": "natural",
            "log_offset": 1e-6,
            "channels": self.channels,
        }


class LogMelStats(StatsModel):
    """``[mean, std]`` of log-mel bands: ``(2 * n_mels,)`` scene, frames every 40 ms."""

    name = "logmel_stats"
    label = "logmel_stats (baseline: log-mel mean/std)"

    def __init__(self, config: LogMelStatsConfig | None = None, **options: Any) -> None:
        self.config: LogMelStatsConfig = config or from_dict(
            LogMelStatsConfig, options, where="logmel_stats"
        )
        self.frontend = build_frontend("logmel", self.config.frontend_config())
        self.context = ContextConfig(self.config.frame_hop_ms, self.config.context_ms)
        self.channels = self.config.channels
        self.embedding_size = 2 * self.config.n_mels * self.channels
        if self.channels > 1:
            self.name = f"logmel_stats_{self.channels}ch"
            self.label = (
                f"{self.name} (baseline: log-mel mean/std of each of {self.channels} channels)"
            )
        self._setup_geometry()

    def descriptors(self, clip) -> torch.Tensor:
        x = self.features(clip).to(torch.float64)
        return torch.cat([x, x.square()], dim=1)

    def summarise(self, means: torch.Tensor) -> torch.Tensor:
        n = self.config.n_mels * self.channels
        return mean_std(means[..., :n], means[..., n:])

    def identity_payload(self) -> dict[str, Any]:
        payload = super().identity_payload()
        if self.channels == 1:  # mono: the identity (and cache keys) from before channels existed
            del payload["config"]["channels"]
        return payload
