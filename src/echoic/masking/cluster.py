"""Clustered patch masking (SSAST, Gong et al. 2022): ``cluster``.

SSAST hides square clusters of neighbouring patches: it repeatedly picks a random patch and a
random cluster side ``c`` in ``[min_side, min_side + n_sides)`` (SSAST: 3, 4 or 5), hides the
``c × c`` patches starting there, and stops once enough patches are hidden, truncating to the exact
count. SSAST hides 400 of the 512 patches of a 10.24-s clip: ``mask_ratio = 400 / 512``.

Here the clusters are centred on their patch and clipped to the grid (SSAST's flat indexing wraps
around the time edge instead), all candidate clusters are drawn at once (``≈ 3 ×`` the needed
area), and the exact count is reached by hiding clusters in drawing order and a random part of the
last one. In the rare case the drawn clusters cover too little, random extra patches are hidden.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from echoic.errors import ConfigError
from echoic.masking.base import (
    MaskSample,
    arrival_priority,
    check_batch,
    check_ratio,
    grid_size,
    masked_count,
    rank_select,
    register,
)

__all__ = ["ClusterMask"]

SSAST_MASK_RATIO = 400 / 512


@register("cluster")
@dataclass
class ClusterMask:
    """Exact-count clustered masking; cluster sides are ``min_side + randint(n_sides)``."""

    mask_ratio: float = SSAST_MASK_RATIO
    min_side: int = 3
    n_sides: int = 3

    def __post_init__(self) -> None:
        check_ratio(self.mask_ratio, "cluster")
        if self.min_side < 1 or self.n_sides < 1:
            raise ConfigError(
                f"cluster.min_side and cluster.n_sides must be >= 1; found {self.min_side}, "
                f"{self.n_sides}."
            )

    def count(self, grid: tuple[int, int]) -> int:
        return masked_count(grid_size(grid)[2], self.mask_ratio)

    def __call__(self, batch: int, grid: tuple[int, int], generator: torch.Generator) -> MaskSample:
        check_batch(batch)
        n_freq, _, n_tokens = grid_size(grid)
        n_masked = masked_count(n_tokens, self.mask_ratio)
        n_clusters = math.ceil(3 * n_masked / self.min_side**2) + 4
        start = torch.randint(0, n_tokens, (batch, n_clusters, 1), generator=generator)
        side = self.min_side + torch.randint(
            0, self.n_sides, (batch, n_clusters, 1), generator=generator
        )
        centre_t, centre_f = start // n_freq, start % n_freq
        low = side // 2
        token = torch.arange(n_tokens)
        t, f = (token // n_freq)[None, None], (token % n_freq)[None, None]  # (1, 1, N)
        cover = (
            (t >= centre_t - low)
            & (t < centre_t - low + side)
            & (f >= centre_f - low)
            & (f < centre_f - low + side)
        )  # (B, C, N)
        masked = rank_select(arrival_priority(cover), n_masked, generator)
        return MaskSample.from_masked(masked)
