"""Learned absolute positions (ViT / DeiT / AST) resampled to the input's length or grid.

A table trained for one size is resized for another with ``F.interpolate`` (``align_corners=False``):
linear along the token axis for 1-D tables, bilinear over (frequency, time) for 2-D ones, as timm's
``resample_abs_pos_embed`` and AST do (both shrinking and growing). The exact size returns the
table itself, untouched.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from echoic.errors import ConfigError

__all__ = ["LearnedPositions1d", "LearnedPositions2d", "resize_positions_1d", "resize_positions_2d"]


def resize_positions_1d(table: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """Linear resampling of a ``(L, D)`` table to ``(n_tokens, D)``; ``table`` itself when
    ``n_tokens == L``."""
    if n_tokens < 1:
        raise ConfigError(f"cannot resize positions to {n_tokens} tokens; expected >= 1.")
    if n_tokens == table.shape[0]:
        return table
    resized = F.interpolate(
        table.T[None], size=n_tokens, mode="linear", align_corners=False
    )  # (1, D, n)
    return resized[0].T


def resize_positions_2d(table: torch.Tensor, n_freq: int, n_time: int) -> torch.Tensor:
    """Bilinear resampling of a ``(F, T, D)`` table to ``(n_freq, n_time, D)``; ``table`` itself
    when the size matches."""
    if n_freq < 1 or n_time < 1:
        raise ConfigError(f"cannot resize positions to a {n_freq} × {n_time} grid; expected >= 1.")
    if (n_freq, n_time) == tuple(table.shape[:2]):
        return table
    resized = F.interpolate(
        table.permute(2, 0, 1)[None], size=(n_freq, n_time), mode="bilinear", align_corners=False
    )  # (1, D, n_freq, n_time)
    return resized[0].permute(1, 2, 0)


class LearnedPositions1d(nn.Module):
    """A learned ``(max_len, D)`` table (``table``), truncated-normal init with std ``init_std``.

    ``forward(n_tokens)`` → ``(n_tokens, D)``, resampled linearly when ``n_tokens != max_len``.
    """

    def __init__(self, max_len: int, dim: int, init_std: float = 0.02) -> None:
        super().__init__()
        if max_len < 1 or dim < 1:
            raise ConfigError(f"positions need max_len >= 1 and dim >= 1; found {max_len}, {dim}.")
        self.table = nn.Parameter(torch.zeros(max_len, dim))
        nn.init.trunc_normal_(self.table, std=init_std, a=-2 * init_std, b=2 * init_std)

    def forward(self, n_tokens: int) -> torch.Tensor:
        """Returns ``(n_tokens, D)``, to add to ``(B, n_tokens, D)`` tokens."""
        return resize_positions_1d(self.table, n_tokens)


class LearnedPositions2d(nn.Module):
    """A learned ``(n_freq, n_time, D)`` table of patch positions (``table``).

    :meth:`grid` resamples bilinearly to any ``(n_freq, n_time)``; ``forward`` flattens it in the
    encoders' time-major token order (``token = time_patch * n_freq + freq_patch``, see
    ``echoic.layers.patch_embed``).
    """

    def __init__(self, n_freq: int, n_time: int, dim: int, init_std: float = 0.02) -> None:
        super().__init__()
        if min(n_freq, n_time, dim) < 1:
            raise ConfigError(
                f"positions need a grid and width >= 1; found {n_freq} × {n_time}, dim={dim}."
            )
        self.table = nn.Parameter(torch.zeros(n_freq, n_time, dim))
        nn.init.trunc_normal_(self.table, std=init_std, a=-2 * init_std, b=2 * init_std)

    def grid(self, n_freq: int, n_time: int) -> torch.Tensor:
        """``(n_freq, n_time, D)``: the table itself at its own size, else resampled."""
        return resize_positions_2d(self.table, n_freq, n_time)

    def forward(self, n_freq: int, n_time: int) -> torch.Tensor:
        """Returns ``(n_time * n_freq, D)`` in time-major token order."""
        grid = self.grid(n_freq, n_time)
        return grid.transpose(0, 1).reshape(n_time * n_freq, grid.shape[-1])
