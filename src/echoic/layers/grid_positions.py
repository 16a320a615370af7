"""Learned positions of a (frequency, time) patch grid, fitted to grids of other sizes.

A published model's table was trained for one grid (AST: 12 × 101 patches of 10.24 s; SSAST
pretraining: 8 × 64; Dasheng: 252 time steps of 10.08 s). Fitted to a grid of another size, one
axis at a time (time first, then frequency, as AST and SSAST do):

- a **shorter** axis takes a run of the table: its first entries (``fit="start"``: what
  transformers' AST and Dasheng amount to — their inputs are padded at the end, Dasheng slices
  ``time_pos_embed[..., :t]``), or its centred entries (``fit="centre"``: the AST / SSAST code's
  rule when a model is built for a shorter input, ``table[p/2 - n/2 : p/2 - n/2 + n]`` with integer
  halves);
- a **longer** axis is resampled linearly (``F.interpolate`` bilinear, ``align_corners=False``),
  as AST, SSAST and Dasheng do when a model is built for a longer input.

Positions are fitted to each item's own number of valid time steps, so an item gets the same
positions alone or padded in a batch (its output never depends on the batch). Two table kinds:
one joint ``(F, T, D)`` table (AST, SSAST: ``table``) or separable tables whose sum is the position
(Dasheng: ``time`` ``(T, D)`` + ``freq`` ``(F, D)``).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from echoic.errors import ConfigError
from echoic.layers.learned_positions import resize_positions_2d

__all__ = ["FITS", "GridPositions", "PositionFit", "fit_positions"]

PositionFit = Literal["start", "centre"]
FITS = ("start", "centre")


def _fit_axis(table: torch.Tensor, axis: int, size: int, fit: str) -> torch.Tensor:
    have = int(table.shape[axis])
    if size == have:
        return table
    if size < have:
        first = 0 if fit == "start" else have // 2 - size // 2
        return table.narrow(axis, first, size)
    n_freq, n_time = (size, table.shape[1]) if axis == 0 else (table.shape[0], size)
    return resize_positions_2d(table, int(n_freq), int(n_time))


def fit_positions(table: torch.Tensor, n_freq: int, n_time: int, fit: str) -> torch.Tensor:
    """A ``(F, T, D)`` table fitted to ``(n_freq, n_time, D)`` (module docstring; the table itself
    when the size matches)."""
    if fit not in FITS:
        raise ConfigError(f"position fit must be 'start' or 'centre'; found {fit!r}.")
    if n_freq < 1 or n_time < 1:
        raise ConfigError(f"cannot fit positions to a {n_freq} × {n_time} grid; expected >= 1.")
    return _fit_axis(_fit_axis(table, 1, n_time, fit), 0, n_freq, fit)


def _table(init_std: float, *shape: int) -> nn.Parameter:
    parameter = nn.Parameter(torch.zeros(shape))
    nn.init.trunc_normal_(parameter, std=init_std, a=-2 * init_std, b=2 * init_std)
    return parameter


class GridPositions(nn.Module):
    """Learned ``(n_freq, n_time)`` grid positions: a joint ``table`` ``(F, T, D)``, or with
    ``separable=True`` a ``time`` ``(T, D)`` and a ``freq`` ``(F, D)`` table added together.
    Truncated-normal init with std ``init_std`` (converted weights replace it)."""

    def __init__(
        self,
        n_freq: int,
        n_time: int,
        dim: int,
        separable: bool = False,
        fit: str = "start",
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        if min(n_freq, n_time, dim) < 1:
            raise ConfigError(
                f"positions need a grid and width >= 1; found {n_freq} × {n_time}, dim={dim}."
            )
        if fit not in FITS:
            raise ConfigError(f"position fit must be 'start' or 'centre'; found {fit!r}.")
        self.fit = fit
        self.separable = separable
        self.n_time = n_time
        self.table: nn.Parameter | None = None
        self.time: nn.Parameter | None = None
        self.freq: nn.Parameter | None = None
        if separable:
            self.time, self.freq = _table(init_std, n_time, dim), _table(init_std, n_freq, dim)
        else:
            self.table = _table(init_std, n_freq, n_time, dim)

    def fitted(self, n_freq: int, n_time: int) -> torch.Tensor:
        """``(n_freq, n_time, D)`` positions of a grid whose valid time steps are all of it."""
        if self.table is not None:
            return fit_positions(self.table, n_freq, n_time, self.fit)
        assert self.time is not None and self.freq is not None
        time = fit_positions(self.time[None], 1, n_time, self.fit)  # (1, n_time, D)
        freq = fit_positions(self.freq[:, None], n_freq, 1, self.fit)  # (n_freq, 1, D)
        return freq + time

    def forward(
        self, n_freq: int, n_time: int, valid_steps: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Positions of an ``(n_freq, n_time)`` grid: ``(n_freq, n_time, D)`` when they do not
        depend on the item, else ``(B, n_freq, n_time, D)`` fitted to each item's
        ``valid_steps (B,)`` (columns past an item's valid steps hold zeros)."""
        if n_time == 0:
            return self.fitted(n_freq, 1)[:, :0]
        shared = self.fit == "start" and n_time <= self.n_time
        if valid_steps is None or shared or bool((valid_steps == n_time).all()):
            return self.fitted(n_freq, n_time)
        steps = valid_steps.clamp(1, n_time)
        out: torch.Tensor | None = None
        for count in sorted({int(s) for s in steps.tolist()}):
            cells = self.fitted(n_freq, count)
            if out is None:
                out = cells.new_zeros(int(steps.shape[0]), n_freq, n_time, cells.shape[-1])
            rows = (steps == count).nonzero()[:, 0]
            out[rows, :, :count] = cells
        assert out is not None
        return out
