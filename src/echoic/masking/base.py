"""The contract of every mask sampler, the sampler registry and the exact-count helpers.

A sampler is a small dataclass whose ``__call__(batch, grid, generator)`` returns a
:class:`MaskSample`. Samplers are pure index samplers: they see only the batch size and the patch
grid, never features, and all their randomness comes from the ``torch.Generator`` passed in, so
the same generator state gives the same masks on any machine.

Token order follows the encoders: ``grid = (n_freq, n_time)`` patches, token
``n = time * n_freq + freq`` (time-major), ``N = n_freq * n_time``.

Every sampler masks exactly :func:`masked_count` ``(N, mask_ratio)`` tokens of every item, so kept
tokens stack into a ``(B, K)`` index tensor (token dropping, MAE / EAT) and masked tokens into a
``(B, M)`` one (SSAST).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from echoic.config import from_dict
from echoic.errors import ConfigError
from echoic.registry import Registry

__all__ = [
    "MASKERS",
    "MaskSample",
    "Masker",
    "arrival_priority",
    "build_masker",
    "check_ratio",
    "masked_count",
    "rank_select",
]


@dataclass
class MaskSample:
    """Masks of a batch, exact counts per item.

    masked: ``(B, N)`` bool, True where a token is hidden from the student.
    keep_idx: ``(B, K)`` int64 ascending indices of visible tokens, ``K = N - M``.
    masked_idx: ``(B, M)`` int64 ascending indices of hidden tokens.
    """

    masked: torch.Tensor
    keep_idx: torch.Tensor
    masked_idx: torch.Tensor

    @property
    def n_keep(self) -> int:
        return int(self.keep_idx.shape[1])

    @property
    def n_masked(self) -> int:
        return int(self.masked_idx.shape[1])

    @classmethod
    def from_masked(cls, masked: torch.Tensor) -> MaskSample:
        """Build from a ``(B, N)`` bool mask with the same number of True values in every row."""
        if masked.ndim != 2 or masked.dtype != torch.bool:
            raise ConfigError(
                f"masked must be a (B, N) bool tensor; found {masked.dtype} {tuple(masked.shape)}."
            )
        counts = masked.sum(dim=1)
        if counts.numel() and bool((counts != counts[0]).any()):
            raise ConfigError(
                f"every item must hide the same number of tokens; found counts {counts.tolist()}. "
                "Use a sampler with exact counts (all of echoic.masking's are)."
            )
        n_masked = int(counts[0]) if counts.numel() else 0
        batch, n_tokens = masked.shape
        # stable sort: False (kept) first, each group in ascending token order
        order = torch.sort(masked.to(torch.uint8), dim=1, stable=True).indices
        keep_idx = order[:, : n_tokens - n_masked].contiguous()
        masked_idx = order[:, n_tokens - n_masked :].contiguous()
        return cls(masked=masked, keep_idx=keep_idx.reshape(batch, -1), masked_idx=masked_idx)


class Masker(Protocol):
    """What a registered sampler config is: callable on ``(batch, grid, generator)``."""

    mask_ratio: float

    def count(self, grid: tuple[int, int]) -> int:
        """Tokens hidden in every item for this ``grid``."""
        ...

    def __call__(
        self, batch: int, grid: tuple[int, int], generator: torch.Generator
    ) -> MaskSample: ...


MASKERS: Registry[type[Any]] = Registry("mask sampler", discover_package="echoic.masking")
"""name → sampler dataclass; modules of ``echoic.masking`` register themselves."""


def build_masker(name: str, **options: Any) -> Masker:
    """The sampler registered as ``name`` with ``options`` (e.g. ``mask_ratio=0.8``).

    Unknown options raise :class:`~echoic.errors.ConfigError` naming the nearest valid one.

    >>> sample = build_masker("inverse_block", mask_ratio=0.8, block=5)(4, (8, 64), generator)
    """
    cls = MASKERS.get(name)
    return from_dict(cls, options, where=f"mask sampler {name!r}")


def check_ratio(ratio: float, where: str) -> None:
    if not 0.0 < float(ratio) < 1.0:
        raise ConfigError(f"{where}.mask_ratio must lie strictly between 0 and 1; found {ratio}.")


def masked_count(n_tokens: int, mask_ratio: float) -> int:
    """Tokens every sampler hides: ``round(mask_ratio * N)`` clamped to ``[1, N - 1]``.

    Both ends are clamped so that every item keeps one visible token and hides one target.
    Requires ``N >= 2``.
    """
    if n_tokens < 2:
        raise ConfigError(
            f"masking needs at least 2 tokens per item (one kept, one hidden); found {n_tokens}. "
            "Use longer crops or smaller patches."
        )
    return min(max(round(mask_ratio * n_tokens), 1), n_tokens - 1)


def uniform(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """``U[0, 1)`` float64 noise on the CPU from ``generator`` (device-independent)."""
    return torch.rand(shape, generator=generator, dtype=torch.float64)


def rank_select(priority: torch.Tensor, n_select: int, generator: torch.Generator) -> torch.Tensor:
    """Pick exactly ``n_select`` tokens per row, highest ``priority`` first, ties broken at random.

    priority: ``(B, N)`` integer-valued float tensor (e.g. 1 inside a block, 0 outside).
    Returns ``(B, N)`` bool with exactly ``n_select`` True per row: every token of a higher priority
    class is chosen before any of a lower one, and within the class that is cut, a uniformly
    random subset is chosen (the data2vec 2.0 "same number of masks" adjustment).
    """
    batch, n_tokens = priority.shape
    key = priority.to(torch.float64) + uniform((batch, n_tokens), generator)
    order = torch.argsort(key, dim=1, descending=True)
    chosen = torch.zeros(batch, n_tokens, dtype=torch.bool)
    chosen.scatter_(1, order[:, :n_select], True)
    return chosen


def arrival_priority(cover: torch.Tensor) -> torch.Tensor:
    """Priority of tokens covered by a sequence of random shapes, earliest shape first.

    cover: ``(B, C, N)`` bool, shape ``c`` of item ``b`` covers token ``n``. Returns ``(B, N)``
    float64: ``C - c_first`` for the first shape covering the token, 0 for uncovered tokens. With
    :func:`rank_select` this reproduces "add shapes until the count is reached, then take a random
    part of the last one" without a Python loop.
    """
    n_shapes = cover.shape[1]
    any_cover = cover.any(dim=1)
    first = torch.argmax(cover.to(torch.uint8), dim=1)  # first True along C (0 if none)
    return torch.where(any_cover, (n_shapes - first).to(torch.float64), 0.0)


def grid_size(grid: tuple[int, int]) -> tuple[int, int, int]:
    """``(n_freq, n_time, N)`` after checking ``grid``."""
    if len(grid) != 2 or min(int(grid[0]), int(grid[1])) < 1:
        raise ConfigError(f"grid must be (n_freq, n_time) with both >= 1; found {grid!r}.")
    n_freq, n_time = int(grid[0]), int(grid[1])
    return n_freq, n_time, n_freq * n_time


def check_batch(batch: int) -> None:
    if batch < 1:
        raise ConfigError(f"batch must be >= 1; found {batch}.")


def register(name: str) -> Callable[[type[Any]], type[Any]]:
    """Class decorator: register a sampler dataclass under ``name``."""

    def add(cls: type[Any]) -> type[Any]:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"mask sampler {name!r} must be a dataclass; got {cls!r}.")
        MASKERS.register(name, cls)
        return cls

    return add
