"""Span masks over whole time columns or frequency rows: ``time_span`` and ``freq_span``.

Spans of ``span`` consecutive time patches (or frequency patches) are drawn at random starts and
hidden in drawing order until exactly ``masked_count(L, mask_ratio)`` positions of the axis of
length ``L`` are hidden (a random part of the last span), in the manner of wav2vec 2.0 time masks
and SpecAugment-style frequency masks. Every token of a hidden column (row) is hidden, so an item
hides exactly ``count(grid) = masked_count(L, mask_ratio) * (N / L)`` tokens.
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

__all__ = ["FreqSpanMask", "TimeSpanMask", "span_positions"]


def span_positions(
    batch: int, length: int, n_hidden: int, span: int, generator: torch.Generator
) -> torch.Tensor:
    """``(B, length)`` bool with exactly ``n_hidden`` True per row, made of random spans."""
    span = max(1, min(span, length))
    n_spans = math.ceil(3 * n_hidden / span) + 4
    start = torch.randint(0, length, (batch, n_spans, 1), generator=generator)
    pos = torch.arange(length)[None, None]
    cover = (pos >= start) & (pos < start + span)  # (B, S, L), spans clipped at the end
    return rank_select(arrival_priority(cover), n_hidden, generator)


@dataclass
class _SpanMask:
    mask_ratio: float = 0.5
    span: int = 2

    axis = "time"

    def __post_init__(self) -> None:
        check_ratio(self.mask_ratio, f"{self.axis}_span")
        if self.span < 1:
            raise ConfigError(f"{self.axis}_span.span must be >= 1; found {self.span}.")

    def _axis_length(self, grid: tuple[int, int]) -> int:
        n_freq, n_time, _ = grid_size(grid)
        return n_time if self.axis == "time" else n_freq

    def count(self, grid: tuple[int, int]) -> int:
        length = self._axis_length(grid)
        return masked_count(length, self.mask_ratio) * (grid_size(grid)[2] // length)

    def __call__(self, batch: int, grid: tuple[int, int], generator: torch.Generator) -> MaskSample:
        check_batch(batch)
        n_freq, n_time, _ = grid_size(grid)
        length = self._axis_length(grid)
        hidden = span_positions(
            batch, length, masked_count(length, self.mask_ratio), self.span, generator
        )
        if self.axis == "time":
            masked = hidden[:, :, None].expand(batch, n_time, n_freq)
        else:
            masked = hidden[:, None, :].expand(batch, n_time, n_freq)
        return MaskSample.from_masked(masked.reshape(batch, -1))


@register("time_span")
@dataclass
class TimeSpanMask(_SpanMask):
    """Hide whole time columns (all frequency patches) in spans of ``span`` time patches."""

    axis = "time"


@register("freq_span")
@dataclass
class FreqSpanMask(_SpanMask):
    """Hide whole frequency rows (all time patches) in spans of ``span`` frequency patches."""

    axis = "freq"
