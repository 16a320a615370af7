"""Block masks on the 2-D patch grid with an exact count (data2vec 2.0 / EAT: ``inverse_block``).

data2vec 2.0 and EAT sample *visible* regions: ``round(N * (1 - mask_ratio + adjust) / area)`` block
centres are drawn uniformly (with replacement), every token within the ``block`` around a centre
is marked, and the marked tokens are kept; the counts are then made exact — a random subset of the
marked tokens when there are too many, plus random unmarked ones when there are too few — so every
item keeps exactly ``N - masked_count(N, mask_ratio)`` tokens. With ``inverse=False`` the blocks
are the *hidden* regions instead (BEiT-style block masking) and ``adjust`` is added to the hidden
share.

EAT's defaults (its released AudioSet config): ``mask_ratio=0.8``, ``block=(5, 5)``,
``adjust=0.07``, ``inverse=True``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from echoic.errors import ConfigError
from echoic.masking.base import (
    MaskSample,
    check_batch,
    check_ratio,
    grid_size,
    masked_count,
    rank_select,
    register,
)

__all__ = ["InverseBlockMask", "block_cover"]


def block_cover(centres: torch.Tensor, block: tuple[int, int]) -> torch.Tensor:
    """Dilate centre marks into blocks.

    centres: ``(B, n_freq, n_time)`` bool. A centre at ``(f, t)`` covers frequencies
    ``[f - bf // 2, f - bf // 2 + bf)`` and times ``[t - bt // 2, t - bt // 2 + bt)``, clipped to
    the grid. Returns ``(B, n_freq, n_time)`` bool.
    """
    bf, bt = block
    x = centres.to(torch.float32)[:, None]  # (B, 1, nF, nT)
    # pad so that output p pools inputs [p - (b - 1 - b // 2), p + b // 2]
    x = F.pad(x, (bt - 1 - bt // 2, bt // 2, bf - 1 - bf // 2, bf // 2))
    return F.max_pool2d(x, kernel_size=(bf, bt), stride=1)[:, 0] > 0


@register("inverse_block")
@dataclass
class InverseBlockMask:
    """Exact-count block masking on the ``(n_freq, n_time)`` grid; blocks are kept when ``inverse``."""

    mask_ratio: float = 0.8
    block: tuple[int, int] = (5, 5)
    adjust: float = 0.07
    inverse: bool = True

    def __post_init__(self) -> None:
        check_ratio(self.mask_ratio, "inverse_block")
        if isinstance(self.block, int):
            self.block = (self.block, self.block)
        self.block = (int(self.block[0]), int(self.block[1]))
        if min(self.block) < 1:
            raise ConfigError(f"inverse_block.block must be two ints >= 1; found {self.block}.")
        if not 0.0 <= self.adjust < 1.0:
            raise ConfigError(f"inverse_block.adjust must lie in [0, 1); found {self.adjust}.")

    def count(self, grid: tuple[int, int]) -> int:
        return masked_count(grid_size(grid)[2], self.mask_ratio)

    def __call__(self, batch: int, grid: tuple[int, int], generator: torch.Generator) -> MaskSample:
        check_batch(batch)
        n_freq, n_time, n_tokens = grid_size(grid)
        n_masked = masked_count(n_tokens, self.mask_ratio)
        block_share = (1.0 - self.mask_ratio if self.inverse else self.mask_ratio) + self.adjust
        area = self.block[0] * self.block[1]
        n_centres = max(1, round(n_tokens * block_share / area))
        picks = torch.randint(0, n_tokens, (batch, n_centres), generator=generator)
        centres = torch.zeros(batch, n_tokens, dtype=torch.bool)
        centres.scatter_(1, picks, True)
        # token n = t * n_freq + f  →  (B, n_time, n_freq) → (B, n_freq, n_time)
        centre_grid = centres.reshape(batch, n_time, n_freq).transpose(1, 2)
        in_block = block_cover(centre_grid, self.block).transpose(1, 2).reshape(batch, n_tokens)
        priority = in_block.to(torch.float64)
        if self.inverse:
            kept = rank_select(priority, n_tokens - n_masked, generator)
            masked = ~kept
        else:
            masked = rank_select(priority, n_masked, generator)
        return MaskSample.from_masked(masked)
