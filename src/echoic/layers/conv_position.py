"""Convolutional relative positional embedding (wav2vec 2.0 / HuBERT / WavLM ``pos_conv_embed``).

A grouped ``Conv1d(D, D, K, groups=G, padding=K // 2)`` over the frame axis, its weight
weight-normalised over dim 2 (one norm per kernel tap, across output and input channels), then
exact GELU. For even ``K`` the padded convolution yields one frame too many; the last is dropped, so
output frame ``t`` sees input frames ``t - K/2 .. t + K/2 - 1``.

:class:`StackedConvPositionalEmbedding` is data2vec 1.0 audio's variant: several plain grouped
convolutions, each followed by a parameter-free LayerNorm and GELU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from echoic.errors import ConfigError

__all__ = ["ConvPositionalEmbedding", "StackedConvPositionalEmbedding"]


class ConvPositionalEmbedding(nn.Module):
    """``(B, N, D)`` → ``(B, N, D)`` positional embedding (added to the tokens by the caller).

    The weight norm is ``torch.nn.utils.parametrizations.weight_norm`` (``conv.parametrizations.
    weight.original0`` = g ``(1, 1, K)``, ``original1`` = v ``(D, D / G, K)``). Old-style
    ``conv.weight_g`` / ``conv.weight_v`` state-dict keys are converted by PyTorch on
    ``load_state_dict``; :meth:`load_weight_norm` takes the pair directly.
    """

    def __init__(self, dim: int, kernel_size: int = 128, groups: int = 16) -> None:
        super().__init__()
        if kernel_size < 1 or groups < 1 or dim % groups:
            raise ConfigError(
                f"convolutional positions need kernel_size >= 1 and groups dividing the width; "
                f"found dim={dim}, kernel_size={kernel_size}, groups={groups} (wav2vec 2.0 uses "
                "kernel 128, 16 groups)."
            )
        self.kernel_size = kernel_size
        self.groups = groups
        conv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=groups)
        self.conv = weight_norm(conv, name="weight", dim=2)
        self.drop_last = kernel_size % 2 == 0

    @torch.no_grad()
    def load_weight_norm(
        self, weight_g: torch.Tensor, weight_v: torch.Tensor, bias: torch.Tensor | None = None
    ) -> None:
        """Load a checkpoint's weight-norm pair: weight_g ``(1, 1, K)`` (magnitude per tap),
        weight_v ``(D, D / G, K)`` (direction), and optionally the bias ``(D,)``."""
        parametrization = self.conv.parametrizations.weight
        for name, value, target in (
            ("weight_g", weight_g, parametrization.original0),
            ("weight_v", weight_v, parametrization.original1),
        ):
            if tuple(value.shape) != tuple(target.shape):
                raise ConfigError(
                    f"{name} has shape {tuple(value.shape)}; this positional convolution expects "
                    f"{tuple(target.shape)} (dim, dim / groups, kernel)."
                )
            target.copy_(value)
        if bias is not None:
            self.conv.bias.copy_(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``(B, N, D)``. Returns ``GELU(conv(x))`` of shape ``(B, N, D)``."""
        out = self.conv(x.transpose(1, 2))  # (B, D, N + 1 if K even else N)
        if self.drop_last:
            out = out[:, :, :-1]
        return F.gelu(out).transpose(1, 2)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, groups={self.groups}"


class StackedConvPositionalEmbedding(nn.Module):
    """data2vec 1.0 audio's positions: ``layers`` plain grouped convolutions, each followed by a
    LayerNorm over channels without affine parameters and exact GELU: ``(B, N, D)`` → ``(B, N, D)``.

    Each ``Conv1d(D, D, K, groups=G, padding=K // 2)`` drops its last frame for even ``K``. Weights:
    ``layers.{i}.conv``. With a ``padding_mask``, padded frames are zeroed before every layer (the
    reference zeroes them only before the first, so its valid outputs depend on the padding).
    """

    def __init__(self, dim: int, kernel_size: int = 19, groups: int = 16, layers: int = 5) -> None:
        super().__init__()
        if kernel_size < 1 or groups < 1 or dim % groups or layers < 1:
            raise ConfigError(
                f"stacked convolutional positions need kernel_size >= 1, layers >= 1 and groups "
                f"dividing the width; found dim={dim}, kernel_size={kernel_size}, groups={groups}, "
                f"layers={layers} (data2vec audio uses kernel 19, 16 groups, 5 layers)."
            )
        self.kernel_size = kernel_size
        self.groups = groups
        self.drop_last = kernel_size % 2 == 0
        self.layers = nn.ModuleList(_PlainConv(dim, kernel_size, groups) for _ in range(layers))

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: ``(B, N, D)``; padding_mask: ``(B, N)`` bool, True on padding, or None."""
        for layer in self.layers:
            assert isinstance(layer, _PlainConv)
            if padding_mask is not None:
                x = x.masked_fill(padding_mask[..., None], 0.0)
            out = layer.conv(x.transpose(1, 2))
            if self.drop_last:
                out = out[:, :, :-1]
            x = F.gelu(F.layer_norm(out.transpose(1, 2), out.shape[1:2]))
        return x

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, groups={self.groups}, layers={len(self.layers)}"


class _PlainConv(nn.Module):
    """One layer of :class:`StackedConvPositionalEmbedding` (holds ``conv``)."""

    def __init__(self, dim: int, kernel_size: int, groups: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=groups)
