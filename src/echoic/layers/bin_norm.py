"""A fixed per-bin normalisation of spectral features: batch norm in evaluation mode over the
frequency bins (Dasheng's ``init_bn``: ``BatchNorm2d(n_mels)`` over the log-mel bins)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BinNorm"]


class BinNorm(nn.Module):
    """``(x - running_mean[f]) / sqrt(running_var[f] + eps) * weight[f] + bias[f]`` per bin ``f``
    of ``(B, F, T)`` or ``(B, C, F, T)`` features.

    Always computed with the stored statistics (``F.batch_norm(training=False)``, the kernel the
    published model runs in evaluation), also while training: the statistics are part of the
    input normalisation the weights were trained with, not something to re-estimate. ``weight``
    and ``bias`` are parameters; ``running_mean`` / ``running_var`` persistent buffers.
    """

    def __init__(self, n_bins: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_bins))
        self.bias = nn.Parameter(torch.zeros(n_bins))
        self.running_mean: torch.Tensor
        self.running_var: torch.Tensor
        self.register_buffer("running_mean", torch.zeros(n_bins))
        self.register_buffer("running_var", torch.ones(n_bins))

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        """``(B, F, T)`` or ``(B, C, F, T)`` → the same shape, normalised per bin."""
        flat = values.reshape(-1, *values.shape[-2:])  # (B * C, F, T): bins as batch-norm channels
        out = F.batch_norm(
            flat, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
        )
        return out.reshape(values.shape)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"
