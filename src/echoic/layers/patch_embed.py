"""Non-overlapping spectrogram patches and their linear embedding.

A patch covers ``patch = (patch_f, patch_t)`` bins × frames of a ``(B, F, T)`` feature map; the
supported shapes include 16×16, 16×8 and full-band frame patches ``(F, 4)``. The last, partial time
patch is kept (its missing frames read as 0, like frames beyond an item's length in ``Features``);
``F`` must be a multiple of ``patch_f``.

Token order is time-major: ``token = time_patch * n_freq_patches + freq_patch``. Inside a patch the
pixels are flattened frequency-major: ``pixel = df * patch_t + dt`` — the flattening of a
``Conv2d(1, D, kernel_size=(patch_f, patch_t))`` weight, so such weights load with a reshape.

Multichannel features ``(B, C, F, T)`` give patches of ``C * patch_f * patch_t`` values, channel-major:
``pixel = c * patch_f * patch_t + df * patch_t + dt`` — the flattening of a
``Conv2d(C, D, kernel_size=(patch_f, patch_t))`` weight ``(D, C, patch_f, patch_t)``. Mono
``(B, F, T)`` features are unchanged (``C = 1``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from echoic.errors import ConfigError
from echoic.layers import fused

__all__ = ["PatchEmbed", "gather_tokens", "patchify", "token_grid", "token_padding_mask"]


def _check_patch(patch: tuple[int, int]) -> tuple[int, int]:
    if len(patch) != 2 or min(patch) < 1:
        raise ConfigError(
            f"patch must be two positive ints (freq, time), e.g. (16, 16); found {patch!r}."
        )
    return int(patch[0]), int(patch[1])


def token_grid(n_bins: int, n_frames: int, patch: tuple[int, int]) -> tuple[int, int]:
    """``(n_freq_patches, n_time_patches)`` for ``n_bins`` × ``n_frames`` features.

    The time axis is rounded up (a partial last patch is kept); ``n_bins`` must divide evenly.
    """
    patch_f, patch_t = _check_patch(patch)
    if n_bins % patch_f:
        raise ConfigError(
            f"{n_bins} frequency bins cannot be cut into patches of {patch_f} bins; expected a "
            f"multiple of {patch_f}. Change the frontend's bin count or the patch height."
        )
    if n_frames < 0:
        raise ConfigError(f"n_frames must be >= 0; found {n_frames}.")
    return n_bins // patch_f, math.ceil(n_frames / patch_t)


def patchify(values: torch.Tensor, patch: tuple[int, int]) -> torch.Tensor:
    """Cut features into flattened patches in encoder token order (e.g. MAE reconstruction targets).

    values: ``(B, F, T)``. Returns ``(B, N, patch_f * patch_t)`` with
    ``N = n_time_patches * n_freq_patches`` (time-major) and pixels ``df * patch_t + dt``;
    frames past ``T`` in the last patch are 0. values ``(B, C, F, T)`` give
    ``(B, N, C * patch_f * patch_t)`` with pixels ``c * patch_f * patch_t + df * patch_t + dt``.
    """
    if values.ndim == 4:
        return _patchify_channels(values, patch)
    if values.ndim != 3:
        raise ConfigError(
            f"patchify expects (B, F, T) or (B, C, F, T) values; found shape {tuple(values.shape)}."
        )
    patch_f, patch_t = _check_patch(patch)
    batch, n_bins, n_frames = values.shape
    n_freq, n_time = token_grid(n_bins, n_frames, patch)
    extra = n_time * patch_t - n_frames
    if extra:
        values = F.pad(values, (0, extra))
    patches = values.reshape(batch, n_freq, patch_f, n_time, patch_t).permute(0, 3, 1, 2, 4)
    return patches.reshape(batch, n_time * n_freq, patch_f * patch_t)


def _patchify_channels(values: torch.Tensor, patch: tuple[int, int]) -> torch.Tensor:
    """``(B, C, F, T)`` → ``(B, N, C * patch_f * patch_t)``, pixels channel-major."""
    patch_f, patch_t = _check_patch(patch)
    batch, channels, n_bins, n_frames = values.shape
    n_freq, n_time = token_grid(n_bins, n_frames, patch)
    extra = n_time * patch_t - n_frames
    if extra:
        values = F.pad(values, (0, extra))
    patches = values.reshape(batch, channels, n_freq, patch_f, n_time, patch_t)
    patches = patches.permute(0, 4, 2, 1, 3, 5)  # (B, nT, nF, C, pf, pt)
    return patches.reshape(batch, n_time * n_freq, channels * patch_f * patch_t)


def token_padding_mask(
    lengths: torch.Tensor, n_bins: int, n_frames: int, patch: tuple[int, int]
) -> torch.Tensor:
    """``(B, N)`` bool, True on tokens whose first frame is at or beyond the item's length.

    lengths: ``(B,)`` valid frames per item; ``N`` follows :func:`token_grid` (time-major). The
    same for mono ``(B, F, T)`` and multichannel ``(B, C, F, T)`` features: a token covers every
    channel of its patch.
    """
    n_freq, n_time = token_grid(n_bins, n_frames, patch)
    first_frame = torch.arange(n_time, device=lengths.device) * patch[1]
    pad_time = first_frame[None, :] >= lengths[:, None]  # (B, nT)
    return pad_time[:, :, None].expand(-1, n_time, n_freq).reshape(lengths.shape[0], -1)


def gather_tokens(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Pick tokens per item. x: ``(B, N, C)``, index: ``(B, K)`` int64 → ``(B, K, C)``."""
    return torch.gather(x, 1, index[:, :, None].expand(-1, -1, x.shape[-1]))


class PatchEmbed(nn.Module):
    """``(B, F, T)`` features (``(B, C, F, T)`` with ``in_channels = C > 1``) → ``(B, N, D)``
    patch tokens (no positions).

    Implemented as :func:`patchify` + one ``Linear(in_channels * patch_f * patch_t, D)``: the
    reshape costs one small copy of the input and the projection is a single GEMM; with
    ``keep_idx`` only the kept patches are projected. The weight ``(D, C * patch_f * patch_t)`` is a
    ``Conv2d(C, D, kernel_size=patch, stride=patch)`` weight reshaped.
    """

    def __init__(self, n_bins: int, patch: tuple[int, int], dim: int, in_channels: int = 1) -> None:
        super().__init__()
        self.patch = _check_patch(patch)
        token_grid(n_bins, 0, self.patch)  # validates n_bins against patch_f early
        if int(in_channels) != in_channels or in_channels < 1:
            raise ConfigError(f"in_channels must be an integer >= 1; found {in_channels!r}.")
        self.n_bins = n_bins
        self.in_channels = int(in_channels)
        self.proj = nn.Linear(self.in_channels * self.patch[0] * self.patch[1], dim)

    def check_values(self, values: torch.Tensor) -> None:
        """Raise a :class:`ConfigError` unless ``values`` is ``(B, F, T)`` (mono) or
        ``(B, in_channels, F, T)`` (``(B, 1, F, T)`` counts as mono), with ``F == n_bins``."""
        expected = "(B, F, T)" if self.in_channels == 1 else f"(B, {self.in_channels}, F, T)"
        if values.ndim not in (3, 4):
            raise ConfigError(
                f"the patch embedding takes features {expected}; found shape "
                f"{tuple(values.shape)}. Pass Features.values from a spectral frontend."
            )
        channels = 1 if values.ndim == 3 else int(values.shape[1])
        if channels != self.in_channels:
            raise ConfigError(
                f"the patch embedding takes {self.in_channels}-channel features {expected}; found "
                f"{channels} channel(s), shape {tuple(values.shape)}. Build the encoder with "
                f"in_channels={channels} or give the frontend the matching channels / "
                "interchannel setting."
            )
        if values.shape[-2] != self.n_bins:
            raise ConfigError(
                f"features have {values.shape[-2]} frequency bins but the patch embedding expects "
                f"{self.n_bins}; build the encoder with n_bins={values.shape[-2]} or change the "
                "frontend."
            )

    def forward(self, values: torch.Tensor, keep_idx: torch.Tensor | None = None) -> torch.Tensor:
        """values: ``(B, F, T)``, or ``(B, C, F, T)`` with ``C == in_channels > 1``; keep_idx:
        optional ``(B, K)``.

        Returns ``(B, K, D)`` with ``keep_idx``, else ``(B, N, D)``.
        """
        self.check_values(values)
        patches = patchify(values, self.patch)
        if keep_idx is not None:
            patches = gather_tokens(patches, keep_idx)
        return fused.apply_linear(self.proj, patches)
