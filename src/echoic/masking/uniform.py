"""Unstructured samplers: ``random`` (MAE / Audio-MAE) and ``group_random`` (whole patch groups)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from echoic.errors import ConfigError
from echoic.masking.base import (
    MaskSample,
    check_batch,
    check_ratio,
    grid_size,
    masked_count,
    rank_select,
    register,
    uniform,
)

__all__ = ["GroupRandomMask", "RandomMask"]


@register("random")
@dataclass
class RandomMask:
    """Hide a uniformly random subset of exactly ``masked_count(N, mask_ratio)`` tokens per item.

    Audio-MAE pre-trains with unstructured random masking at ``mask_ratio=0.8``.
    """

    mask_ratio: float = 0.8

    def __post_init__(self) -> None:
        check_ratio(self.mask_ratio, "random")

    def count(self, grid: tuple[int, int]) -> int:
        return masked_count(grid_size(grid)[2], self.mask_ratio)

    def __call__(self, batch: int, grid: tuple[int, int], generator: torch.Generator) -> MaskSample:
        check_batch(batch)
        _, _, n_tokens = grid_size(grid)
        n_masked = masked_count(n_tokens, self.mask_ratio)
        masked = rank_select(torch.zeros(batch, n_tokens), n_masked, generator)
        return MaskSample.from_masked(masked)


@register("group_random")
@dataclass
class GroupRandomMask:
    """Hide whole groups of ``group = (freq, time)`` neighbouring patches at random.

    The grid is tiled into groups (edge groups may be smaller); groups are visited in a random
    order and hidden whole until the next one would overshoot; then a random part of that group is
    hidden, so every item hides exactly ``masked_count(N, mask_ratio)`` tokens. ``group=(n_freq, 1)``
    hides full time columns, ``(1, 1)`` equals ``random``.
    """

    mask_ratio: float = 0.8
    group: tuple[int, int] = (2, 2)

    def __post_init__(self) -> None:
        check_ratio(self.mask_ratio, "group_random")
        self.group = (int(self.group[0]), int(self.group[1]))
        if min(self.group) < 1:
            raise ConfigError(f"group_random.group must be two ints >= 1; found {self.group}.")

    def count(self, grid: tuple[int, int]) -> int:
        return masked_count(grid_size(grid)[2], self.mask_ratio)

    def __call__(self, batch: int, grid: tuple[int, int], generator: torch.Generator) -> MaskSample:
        check_batch(batch)
        n_freq, n_time, n_tokens = grid_size(grid)
        n_masked = masked_count(n_tokens, self.mask_ratio)
        group_f, group_t = min(self.group[0], n_freq), min(self.group[1], n_time)
        groups_f, groups_t = math.ceil(n_freq / group_f), math.ceil(n_time / group_t)
        t = torch.arange(n_time)[:, None].expand(n_time, n_freq)
        f = torch.arange(n_freq)[None, :].expand(n_time, n_freq)
        group_of_token = ((t // group_t) * groups_f + f // group_f).reshape(-1)  # (N,)
        n_groups = groups_f * groups_t
        # random group order per item: rank of each group, then a token's priority is the
        # (negated) rank of its group; within-group ties are broken at random by rank_select
        group_rank = torch.argsort(uniform((batch, n_groups), generator), dim=1)
        position = torch.empty_like(group_rank)
        position.scatter_(1, group_rank, torch.arange(n_groups).expand(batch, n_groups))
        priority = (n_groups - position[:, group_of_token]).to(torch.float64)
        masked = rank_select(priority, n_masked, generator)
        return MaskSample.from_masked(masked)
