"""Fixed separable 2-D sine-cosine positions, computed on the fly for any grid (no max length).

Channel layout of a ``D``-wide position (``D`` divisible by 4): the first ``D/2`` channels encode
the time-patch index, the last ``D/2`` the frequency-patch index. Each half is
``[sin(p·ω_k), cos(p·ω_k)]`` for ``k < D/4``, ``ω_k = 10000^(-k/(D/4))`` (MAE/ViT convention).
"""

from __future__ import annotations

import torch

from echoic.errors import ConfigError

__all__ = ["check_position_dim", "sincos_1d", "sincos_2d", "sincos_grid"]


def check_position_dim(dim: int) -> None:
    """Raise :class:`ConfigError` unless ``dim`` can hold separable 2-D sin-cos positions."""
    if dim <= 0 or dim % 4:
        raise ConfigError(
            f"2-D sin-cos positions need a model width divisible by 4 (half time, half frequency, "
            f"each half sin+cos); found dim={dim}. Use a width such as {max(4, dim - dim % 4 + 4)}."
        )


def sincos_1d(positions: torch.Tensor, dim: int, base: float = 10000.0) -> torch.Tensor:
    """Sine-cosine encoding of integer or real positions.

    positions: ``(...)`` any shape. Returns ``(..., dim)`` float32, ``[sin | cos]`` halves.
    """
    if dim % 2:
        raise ConfigError(f"sincos_1d needs an even width; found dim={dim}.")
    half = dim // 2
    exponent = torch.arange(half, device=positions.device, dtype=torch.float64) / half
    omega = base ** (-exponent)
    angles = positions.to(torch.float64)[..., None] * omega
    return torch.cat([angles.sin(), angles.cos()], dim=-1).to(torch.float32)


def sincos_2d(time_index: torch.Tensor, freq_index: torch.Tensor, dim: int) -> torch.Tensor:
    """Positions of tokens given their patch coordinates.

    time_index, freq_index: ``(...)`` int64 of equal shape. Returns ``(..., dim)`` float32 where
    channels ``[:dim/2]`` encode time and ``[dim/2:]`` frequency.
    """
    check_position_dim(dim)
    return torch.cat([sincos_1d(time_index, dim // 2), sincos_1d(freq_index, dim // 2)], dim=-1)


def sincos_grid(
    n_freq_patches: int, n_time_patches: int, dim: int, device: torch.device | None = None
) -> torch.Tensor:
    """``(N, dim)`` positions of a full grid in time-major token order.

    Token ``n = time_patch * n_freq_patches + freq_patch``, ``N = n_time_patches * n_freq_patches``.
    Computed separably (``n_time + n_freq`` encodings, then broadcast), so any length is cheap.
    """
    check_position_dim(dim)
    half = dim // 2
    t = sincos_1d(torch.arange(n_time_patches, device=device), half)  # (nT, D/2)
    f = sincos_1d(torch.arange(n_freq_patches, device=device), half)  # (nF, D/2)
    grid = torch.cat(
        [
            t[:, None, :].expand(n_time_patches, n_freq_patches, half),
            f[None, :, :].expand(n_time_patches, n_freq_patches, half),
        ],
        dim=-1,
    )
    return grid.reshape(n_time_patches * n_freq_patches, dim)
