"""Non-overlapping spectrogram patches and their linear embedding.

A patch covers ``patch = (patch_f, patch_t)`` bins × frames of a ``(B, F, T)`` feature map; the
supported shapes include 16×16, 16×8 and full-band frame patches ``(F, 4)``. The last, partial time
patch is kept (its missing frames read as 0, like frames beyond an item's length in ``Features``);
``F`` must be a multiple of ``patch_f``.

Token order is time-major: ``token = time_patch * n_freq_patches + freq_patch``. Inside a patch the
pixels are flattened frequency-major: ``pixel = df * patch_t + dt`` — the flattening of a
``Conv2d(1, D, kernel_size=(patch_f, patch_t))`` weight, so such weights load with a reshape.
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
    frames past ``T`` in the last patch are 0.
    """
    if values.ndim != 3:
        raise ConfigError(f"patchify expects (B, F, T) values; found shape {tuple(values.shape)}.")
    patch_f, patch_t = _check_patch(patch)
    batch, n_bins, n_frames = values.shape
    n_freq, n_time = token_grid(n_bins, n_frames, patch)
    extra = n_time * patch_t - n_frames
    if extra:
        values = F.pad(values, (0, extra))
    patches = values.reshape(batch, n_freq, patch_f, n_time, patch_t).permute(0, 3, 1, 2, 4)
    return patches.reshape(batch, n_time * n_freq, patch_f * patch_t)


def token_padding_mask(
    lengths: torch.Tensor, n_bins: int, n_frames: int, patch: tuple[int, int]
) -> torch.Tensor:
    """``(B, N)`` bool, True on tokens whose first frame is at or beyond the item's length.

    lengths: ``(B,)`` valid frames per item; ``N`` follows :func:`token_grid` (time-major).
    """
    n_freq, n_time = token_grid(n_bins, n_frames, patch)
    first_frame = torch.arange(n_time, device=lengths.device) * patch[1]
    pad_time = first_frame[None, :] >= lengths[:, None]  # (B, nT)
    return pad_time[:, :, None].expand(-1, n_time, n_freq).reshape(lengths.shape[0], -1)


def gather_tokens(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Pick tokens per item. x: ``(B, N, C)``, index: ``(B, K)`` int64 → ``(B, K, C)``."""
    return torch.gather(x, 1, index[:, :, None].expand(-1, -1, x.shape[-1]))


class PatchEmbed(nn.Module):
    """``(B, F, T)`` features → ``(B, N, D)`` patch tokens (no positions).

    Implemented as :func:`patchify` + one ``Linear(patch_f * patch_t, D)``: the reshape costs one
    small copy of the input and the projection is a single GEMM; with ``keep_idx`` only the kept
    patches are projected.
    """

    def __init__(self, n_bins: int, patch: tuple[int, int], dim: int) -> None:
        super().__init__()
        self.patch = _check_patch(patch)
        token_grid(n_bins, 0, self.patch)  # validates n_bins against patch_f early
        self.n_bins = n_bins
        self.proj = nn.Linear(self.patch[0] * self.patch[1], dim)

    def forward(self, values: torch.Tensor, keep_idx: torch.Tensor | None = None) -> torch.Tensor:
        """values: ``(B, F, T)``; keep_idx: optional ``(B, K)``.

        Returns ``(B, K, D)`` with ``keep_idx``, else ``(B, N, D)``.
        """
        if values.shape[1] != self.n_bins:
            raise ConfigError(
                f"features have {values.shape[1]} frequency bins but the patch embedding expects "
                f"{self.n_bins}; build the encoder with n_bins={values.shape[1]} or change the "
                "frontend."
            )
        patches = patchify(values, self.patch)
        if keep_idx is not None:
            patches = gather_tokens(patches, keep_idx)
        return fused.linear(patches, self.proj.weight, self.proj.bias)
