"""``mfcc_stats``: MFCCs with deltas and delta-deltas, mean and std over time (a baseline).

MFCC = DCT-II (orthonormal) of the natural-log mel energies along the mel axis, first ``n_mfcc``
coefficients (c0 included), computed in torch on top of :mod:`echoic.features.logmel`
(16 kHz, 25 ms / 10 ms, 40 bands). Deltas use the HTK regression formula
``d[t] = Σ_{n=1..N} n (c[t+n] - c[t-n]) / (2 Σ n²)`` with ``N = 2`` and edge frames repeated;
delta-deltas are deltas of the deltas. Descriptor per frame: ``3 * n_mfcc`` (60) values; scene
``[mean, std]`` = ``6 * n_mfcc`` (120); frames: the same over 250 ms every 40 ms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from echoic.config import from_dict
from echoic.errors import ConfigError
from echoic.features.base import build_frontend
from echoic.zoo.logmel_stats import LogMelStatsConfig
from echoic.zoo.stats import ContextConfig, StatsModel, mean_std


def dct_matrix(n_out: int, n_in: int) -> torch.Tensor:
    """``(n_out, n_in)`` float64 orthonormal DCT-II: ``y = M @ x`` equals
    ``scipy.fft.dct(x, type=2, norm="ortho")[:n_out]``."""
    if not 0 < n_out <= n_in:
        raise ConfigError(f"need 0 < n_mfcc <= n_mels; found n_mfcc={n_out}, n_mels={n_in}")
    k = torch.arange(n_out, dtype=torch.float64)[:, None]
    m = torch.arange(n_in, dtype=torch.float64)[None, :]
    basis = torch.cos(math.pi * k * (m + 0.5) / n_in) * math.sqrt(2.0 / n_in)
    basis[0] /= math.sqrt(2.0)
    return basis


def mfcc_from_logmel(logmel: torch.Tensor, n_mfcc: int) -> torch.Tensor:
    """``(..., n_mels, T)`` log-mel → ``(..., n_mfcc, T)`` MFCCs (same dtype)."""
    basis = dct_matrix(n_mfcc, logmel.shape[-2]).to(logmel.dtype)
    return torch.matmul(basis, logmel)


def deltas(x: torch.Tensor, width: int = 2) -> torch.Tensor:
    """HTK regression deltas of ``x`` ``(..., T)`` along the last axis, edges repeated."""
    if width < 1:
        raise ConfigError(f"delta width must be >= 1; found {width}")
    padded = torch.cat(
        [x[..., :1].expand(*x.shape[:-1], width), x, x[..., -1:].expand(*x.shape[:-1], width)],
        dim=-1,
    )
    n_frames = x.shape[-1]
    out = torch.zeros_like(x)
    for n in range(1, width + 1):
        ahead = padded[..., width + n : width + n + n_frames]
        behind = padded[..., width - n : width - n + n_frames]
        out = out + n * (ahead - behind)
    return out / (2 * sum(n * n for n in range(1, width + 1)))


@dataclass
class MfccStatsConfig:
    """Settings of :class:`MfccStats`."""

    sample_rate: int = 16000
    n_mels: int = 40
    n_mfcc: int = 20
    delta_width: int = 2
    win_ms: float = 25.0
    hop_ms: float = 10.0
    f_min: float = 0.0
    f_max: float | None = None
    frame_hop_ms: float = 40.0
    context_ms: float = 250.0


class MfccStats(StatsModel):
    """``[mean, std]`` of MFCC + Δ + ΔΔ: ``(6 * n_mfcc,)`` scene, frames every 40 ms."""

    name = "mfcc_stats"
    label = "mfcc_stats (baseline: MFCC+deltas mean/std)"

    def __init__(self, config: MfccStatsConfig | None = None, **options: Any) -> None:
        self.config: MfccStatsConfig = config or from_dict(
            MfccStatsConfig, options, where="mfcc_stats"
        )
        c = self.config
        mel = LogMelStatsConfig(c.sample_rate, c.n_mels, c.win_ms, c.hop_ms, c.f_min, c.f_max)
        self.frontend = build_frontend("logmel", mel.frontend_config())
        self.basis = dct_matrix(c.n_mfcc, c.n_mels)
        self.context = ContextConfig(c.frame_hop_ms, c.context_ms)
        self.embedding_size = 6 * c.n_mfcc
        self._setup_geometry()

    def mfcc(self, clip) -> torch.Tensor:
        """``(3 * n_mfcc, T)`` float64: MFCC, Δ, ΔΔ of one clip."""
        logmel = self.features(clip).T.to(torch.float64)
        coeffs = torch.matmul(self.basis, logmel)
        d1 = deltas(coeffs, self.config.delta_width)
        d2 = deltas(d1, self.config.delta_width)
        return torch.cat([coeffs, d1, d2], dim=0)

    def descriptors(self, clip) -> torch.Tensor:
        x = self.mfcc(clip).T
        return torch.cat([x, x.square()], dim=1)

    def summarise(self, means: torch.Tensor) -> torch.Tensor:
        n = 3 * self.config.n_mfcc
        return mean_std(means[..., :n], means[..., n:])
