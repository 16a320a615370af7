"""Patch layouts of published spectrogram transformers: strided (overlapping) patches and
frequency-major token order.

echoic's own ViT cuts non-overlapping patches, keeps a partial last time patch and orders tokens
time-major (:mod:`echoic.layers.patch_embed`). Converted checkpoints differ:

- **strided patches** (``stride`` set): the patches of ``Conv2d(kernel_size=patch, stride=stride)``
  without padding — AST / SSAST take 16 × 16 patches every 10 bins and 10 frames (they overlap by
  6), Dasheng 64 × 4 patches every 4 frames. A grid has ``(F - patch_f) // stride_f + 1`` rows and
  ``(T - patch_t) // stride_t + 1`` time steps (0 when ``T < patch_t``); bins and frames that fill
  no patch are not read (AST's 128 bins give 12 rows reading bins 0 … 125), exactly as the
  convolution drops them.
- **frequency-major order** (``flatten="freq_major"``): ``token = freq * n_time + time``, the order
  of ``conv(x).flatten(2)`` on ``(B, C, F, T)`` maps, which AST, SSAST and Dasheng use.

Inside a patch the values are ordered ``c * patch_f * patch_t + df * patch_t + dt`` (a flattened
``Conv2d`` weight ``(D, C, patch_f, patch_t)``), as in :mod:`~echoic.layers.patch_embed`. With
``stride=None`` and ``flatten="time_major"`` every function here gives exactly what
:mod:`~echoic.layers.patch_embed` gives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from echoic.errors import ConfigError
from echoic.layers import fused
from echoic.layers.patch_embed import gather_tokens, patchify, token_grid, token_padding_mask

__all__ = ["Flatten", "PatchLayout", "StridedPatchEmbed"]

Flatten = Literal["time_major", "freq_major"]
FLATTENS = ("time_major", "freq_major")


@dataclass(frozen=True)
class PatchLayout:
    """Where the patches of a ``(B, [C,] F, T)`` feature map are and how tokens are ordered.

    stride: ``(stride_f, stride_t)`` of a strided (valid-convolution) layout, or None for
    non-overlapping patches with a kept partial last time patch (echoic's ViT).
    """

    n_bins: int
    patch: tuple[int, int]
    stride: tuple[int, int] | None = None
    flatten: Flatten = "time_major"

    def __post_init__(self) -> None:
        if self.flatten not in FLATTENS:
            raise ConfigError(
                f"flatten must be 'time_major' or 'freq_major'; found {self.flatten!r}."
            )
        if self.stride is None:
            token_grid(self.n_bins, 0, self.patch)  # n_bins a multiple of patch_f
            return
        (patch_f, patch_t), (stride_f, stride_t) = self.patch, self.stride
        if (
            min(patch_f, patch_t, stride_f, stride_t) < 1
            or stride_f > patch_f
            or stride_t > patch_t
        ):
            raise ConfigError(
                f"patch strides must be >= 1 and at most the patch size {self.patch} (overlapping or "
                f"touching patches); found stride {self.stride}."
            )
        if self.n_bins < patch_f:
            raise ConfigError(
                f"{self.n_bins} frequency bins hold no patch of {patch_f} bins; expected at least "
                f"{patch_f}."
            )

    @property
    def time_stride(self) -> int:
        """Frames between time steps."""
        return self.patch[1] if self.stride is None else self.stride[1]

    @property
    def freq_tokens(self) -> int:
        """Patch rows (tokens per time step)."""
        if self.stride is None:
            return self.n_bins // self.patch[0]
        return (self.n_bins - self.patch[0]) // self.stride[0] + 1

    def time_steps(self, n_frames: int) -> int:
        """Time steps of ``n_frames`` frames (a partial last patch kept only without a stride)."""
        if self.stride is None:
            return math.ceil(n_frames / self.patch[1])
        return 0 if n_frames < self.patch[1] else (n_frames - self.patch[1]) // self.stride[1] + 1

    def grid(self, n_frames: int) -> tuple[int, int]:
        """``(n_freq, n_time)`` token grid of ``n_frames`` frames."""
        if n_frames < 0:
            raise ConfigError(f"n_frames must be >= 0; found {n_frames}.")
        return self.freq_tokens, self.time_steps(n_frames)

    # ----------------------------------------------------------------- token order
    def order(self, cells: torch.Tensor) -> torch.Tensor:
        """``(..., n_freq, n_time, X)`` per grid cell → ``(..., N, X)`` in token order."""
        if self.flatten == "time_major":
            cells = cells.transpose(-3, -2)
        return cells.flatten(-3, -2)

    def cells(self, tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """``(..., N, X)`` in token order → ``(..., n_freq, n_time, X)``; the inverse of :meth:`order`."""
        n_freq, n_time = grid
        if self.flatten == "time_major":
            return tokens.unflatten(-2, (n_time, n_freq)).transpose(-3, -2)
        return tokens.unflatten(-2, (n_freq, n_time))

    def spread(self, per_time: torch.Tensor, n_freq: int) -> torch.Tensor:
        """``(B, n_time)`` values per time step → ``(B, N)`` per token (padding masks)."""
        batch, n_time = per_time.shape
        return self.order(per_time[:, None, :, None].expand(batch, n_freq, n_time, 1))[..., 0]

    def coordinates(
        self, token_index: torch.Tensor, grid: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(time_index, freq_index)`` of flat token indices (any shape, int64)."""
        n_freq, n_time = grid
        if self.flatten == "time_major":
            time_index = torch.div(token_index, n_freq, rounding_mode="floor")
            return time_index, token_index - time_index * n_freq
        freq_index = torch.div(token_index, max(n_time, 1), rounding_mode="floor")
        return token_index - freq_index * n_time, freq_index

    def token_padding(self, lengths: torch.Tensor, n_frames: int) -> torch.Tensor:
        """``(B, N)`` bool, True on the tokens of time steps an item of ``lengths`` frames does not
        have: whose first frame is past it (non-overlapping) or whose frames do not all lie in it
        (strided)."""
        if self.stride is None and self.flatten == "time_major":
            return token_padding_mask(lengths, self.n_bins, n_frames, self.patch)
        n_freq, n_time = self.grid(n_frames)
        first = torch.arange(n_time, device=lengths.device) * self.time_stride
        reach = first + (1 if self.stride is None else self.patch[1])
        return self.spread(reach[None, :] > lengths[:, None], n_freq)

    def valid_steps(self, padding_mask: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """``(B,)`` time steps per item holding at least one token that is not padding."""
        per_cell = self.cells(padding_mask[..., None], grid)[..., 0]  # (B, n_freq, n_time)
        return (~per_cell.all(dim=1)).sum(dim=1)

    # ----------------------------------------------------------------- patches
    def patchify(self, values: torch.Tensor) -> torch.Tensor:
        """``(B, F, T)`` or ``(B, C, F, T)`` → ``(B, N, C * patch_f * patch_t)`` in token order."""
        if self.stride is None and self.flatten == "time_major":
            return patchify(values, self.patch)
        if values.ndim not in (3, 4):
            raise ConfigError(
                f"patchify expects (B, F, T) or (B, C, F, T) values; found shape {tuple(values.shape)}."
            )
        x = values if values.ndim == 4 else values[:, None]
        batch, channels, _, n_frames = x.shape
        (patch_f, patch_t), grid = self.patch, self.grid(n_frames)
        if self.stride is None:  # non-overlapping, partial last patch zero-filled
            stride_f, stride_t = self.patch
            x = nn.functional.pad(x, (0, grid[1] * patch_t - n_frames))
        else:
            stride_f, stride_t = self.stride
            if grid[1] == 0:  # too short for one patch: an empty grid
                return x.new_zeros(batch, 0, channels * patch_f * patch_t)
        x = x.unfold(2, patch_f, stride_f).unfold(3, patch_t, stride_t)  # (B, C, nF, nT, pf, pt)
        x = x[:, :, : grid[0], : grid[1]].permute(0, 2, 3, 1, 4, 5)  # (B, nF, nT, C, pf, pt)
        return self.order(x.reshape(batch, grid[0], grid[1], channels * patch_f * patch_t))


class StridedPatchEmbed(nn.Module):
    """``(B, F, T)`` (``(B, C, F, T)``) features → ``(B, N, D)`` tokens of a :class:`PatchLayout`.

    :meth:`PatchLayout.patchify` + one ``Linear(C * patch_f * patch_t, D)`` (``proj``), whose
    weight is the reshaped ``Conv2d(C, D, kernel_size=patch, stride=stride)`` weight of the
    published models; with ``keep_idx`` only the kept patches are projected. The interface of
    :class:`~echoic.layers.patch_embed.PatchEmbed`.
    """

    def __init__(self, layout: PatchLayout, dim: int, in_channels: int = 1) -> None:
        super().__init__()
        if int(in_channels) != in_channels or in_channels < 1:
            raise ConfigError(f"in_channels must be an integer >= 1; found {in_channels!r}.")
        self.layout = layout
        self.patch = layout.patch
        self.n_bins = layout.n_bins
        self.in_channels = int(in_channels)
        self.proj = nn.Linear(self.in_channels * self.patch[0] * self.patch[1], dim)

    def check_values(self, values: torch.Tensor) -> None:
        """Raise a :class:`ConfigError` unless ``values`` is ``(B, n_bins, T)`` (mono) or
        ``(B, in_channels, n_bins, T)``."""
        channels = 1 if values.ndim == 3 else int(values.shape[1]) if values.ndim == 4 else -1
        if channels != self.in_channels or values.shape[-2] != self.n_bins:
            want = "(B, F, T)" if self.in_channels == 1 else f"(B, {self.in_channels}, F, T)"
            raise ConfigError(
                f"the patch embedding takes features {want} with F={self.n_bins} bins; found shape "
                f"{tuple(values.shape)}. Use the frontend the model was built with."
            )

    def forward(self, values: torch.Tensor, keep_idx: torch.Tensor | None = None) -> torch.Tensor:
        """values ``(B, [C,] F, T)``; keep_idx optional ``(B, K)`` → ``(B, K | N, D)``."""
        self.check_values(values)
        patches = self.layout.patchify(values)
        if keep_idx is not None:
            patches = gather_tokens(patches, keep_idx)
        return fused.apply_linear(self.proj, patches)
