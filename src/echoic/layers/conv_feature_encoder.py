"""Waveform → frames by a stack of strided 1-D convolutions (wav2vec 2.0 / HuBERT / WavLM /
data2vec audio feature encoder).

Layer ``i`` is ``Conv1d(C_{i-1}, dim_i, kernel_i, stride_i)`` without padding, a normalisation and
exact GELU. ``mode="group_norm"`` (base models): ``GroupNorm(dim, dim)`` — each channel normalised
over time — after the first convolution only. ``mode="layer_norm"`` (large models, data2vec):
``LayerNorm(dim)`` over channels after every convolution. The geometry (:attr:`stride`,
:attr:`receptive`, :meth:`num_frames`) is known without running the network: frame ``t`` covers
samples ``[t * stride, t * stride + receptive)``. (In ``group_norm`` mode the first layer's
statistics are taken over the whole input, so every frame also depends, through them, on all of it;
pass ``lengths`` to take them over each item's valid frames only, so that a padded item gives what
it gives alone.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from echoic.errors import ConfigError

__all__ = [
    "WAV2VEC2_CONV_LAYERS",
    "ConvFeatureEncoder",
    "ConvLayer",
    "conv_receptive",
    "conv_stride",
]

WAV2VEC2_CONV_LAYERS: tuple[tuple[int, int, int], ...] = (
    (512, 10, 5),
    (512, 3, 2),
    (512, 3, 2),
    (512, 3, 2),
    (512, 3, 2),
    (512, 2, 2),
    (512, 2, 2),
)
"""``(dim, kernel, stride)`` of wav2vec 2.0's seven layers: 20 ms hop, 25 ms window at 16 kHz."""

Length = TypeVar("Length", int, torch.Tensor)


def conv_stride(layers: Sequence[tuple[int, int, int]]) -> int:
    """Input samples between consecutive outputs of ``(dim, kernel, stride)`` valid convolutions."""
    return math.prod(stride for _, _, stride in layers)


def conv_receptive(layers: Sequence[tuple[int, int, int]]) -> int:
    """Input samples one output of ``(dim, kernel, stride)`` valid convolutions reads."""
    span, jump = 1, 1
    for _, kernel, stride in layers:
        span += (kernel - 1) * jump
        jump *= stride
    return span


class ConvLayer(nn.Module):
    """``Conv1d`` → optional norm → GELU: ``(B, C_in, S)`` → ``(B, dim, S')``.

    norm: ``"group_norm"`` (``GroupNorm(dim, dim)``), ``"layer_norm"`` (``LayerNorm(dim)`` over
    channels) or None. Weights: ``conv``, ``norm``.
    """

    def __init__(
        self,
        in_channels: int,
        dim: int,
        kernel: int,
        stride: int,
        norm: Literal["group_norm", "layer_norm"] | None = None,
        conv_bias: bool = False,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, dim, kernel, stride=stride, bias=conv_bias)
        self.norm_kind = norm
        self.norm: nn.Module | None
        if norm == "group_norm":
            self.norm = nn.GroupNorm(dim, dim)
        elif norm == "layer_norm":
            self.norm = nn.LayerNorm(dim)
        else:
            self.norm = None

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x: ``(B, C_in, S)`` → ``(B, dim, (S - kernel) // stride + 1)``. lengths: ``(B,)`` valid
        output frames per item; a group norm then takes its statistics over those frames only."""
        x = self.conv(x)
        if isinstance(self.norm, nn.GroupNorm) and lengths is not None:
            if bool((lengths < x.shape[-1]).any()):
                return F.gelu(_masked_group_norm(self.norm, x, lengths))
        if self.norm is not None:
            if self.norm_kind == "layer_norm":  # over channels: put them last
                x = self.norm(x.transpose(1, 2)).transpose(1, 2)
            else:
                x = self.norm(x)
        return F.gelu(x)


def _masked_group_norm(norm: nn.GroupNorm, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``GroupNorm(dim, dim)`` of ``x (B, dim, T)`` with each item's statistics over its first
    ``lengths[b]`` frames (at least one); frames beyond are normalised with them too."""
    valid = torch.arange(x.shape[-1], device=x.device)[None, None, :] < lengths[:, None, None]
    count = valid.sum(dim=-1, keepdim=True).clamp_min(1)
    mean = (x * valid).sum(dim=-1, keepdim=True) / count
    var = (((x - mean) * valid) ** 2).sum(dim=-1, keepdim=True) / count
    out = (x - mean) / torch.sqrt(var + norm.eps)
    if norm.affine:
        out = out * norm.weight[None, :, None] + norm.bias[None, :, None]
    return out


class ConvFeatureEncoder(nn.Module):
    """``(B, S)`` or ``(B, C, S)`` waveform → ``(B, D, T)`` frames, ``D`` the last layer's dim.

    layers: ``[(dim, kernel, stride), ...]`` (default :data:`WAV2VEC2_CONV_LAYERS`); mode:
    ``"group_norm"`` or ``"layer_norm"`` (see the module docstring); conv_bias: biases on the
    convolutions (False in wav2vec 2.0 / HuBERT, True in WavLM-large and data2vec); in_channels: of
    the waveform. Weights: ``layers.{i}.conv`` / ``layers.{i}.norm``.
    """

    def __init__(
        self,
        layers: Sequence[tuple[int, int, int]] = WAV2VEC2_CONV_LAYERS,
        mode: Literal["group_norm", "layer_norm"] = "group_norm",
        conv_bias: bool = False,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        if mode not in ("group_norm", "layer_norm"):
            raise ConfigError(
                f"conv feature encoder mode must be 'group_norm' (base models) or 'layer_norm' "
                f"(large models); found {mode!r}."
            )
        if not layers or any(len(spec) != 3 or min(spec) < 1 for spec in layers):
            raise ConfigError(
                f"conv layers must be a non-empty list of positive (dim, kernel, stride); found "
                f"{list(layers)!r}."
            )
        self.specs = tuple((int(d), int(k), int(s)) for d, k, s in layers)
        self.mode = mode
        self.in_channels = in_channels
        modules = []
        channels = in_channels
        for index, (dim, kernel, stride) in enumerate(self.specs):
            norm = mode if mode == "layer_norm" or index == 0 else None
            modules.append(ConvLayer(channels, dim, kernel, stride, norm, conv_bias))
            channels = dim
        self.layers = nn.ModuleList(modules)
        self.dim = channels

    @property
    def stride(self) -> int:
        """Samples between consecutive frames (product of the strides)."""
        return conv_stride(self.specs)

    @property
    def receptive(self) -> int:
        """Samples one frame sees: ``k_1 + sum_i (k_i - 1) * s_1 ... s_{i-1}``."""
        return conv_receptive(self.specs)

    def num_frames(self, n_samples: Length) -> Length:
        """Frames out for ``n_samples`` in (int, or an int64 tensor of ``*_lens``): each valid
        convolution gives ``(n - kernel) // stride + 1`` and 0 for inputs shorter than its kernel."""
        n = n_samples
        for _, kernel, stride in self.specs:
            n = (n - kernel) // stride + 1
            n = n.clamp(min=0) if isinstance(n, torch.Tensor) else max(n, 0)
        return n

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """waveform: ``(B, S)`` or ``(B, C, S)``, ``S >= receptive``. Returns ``(B, D, T)`` with
        ``T = num_frames(S)``. lengths: optional ``(B,)`` valid samples per item; in
        ``group_norm`` mode the first layer's statistics then cover each item's valid frames only
        (without it, or with no item padded, they cover the whole input as in the reference)."""
        x = waveform[:, None] if waveform.ndim == 2 else waveform
        if x.ndim != 3 or x.shape[1] != self.in_channels:
            raise ConfigError(
                f"conv feature encoder expects a (B, S) or (B, {self.in_channels}, S) waveform; "
                f"found shape {tuple(waveform.shape)}."
            )
        if x.shape[-1] < self.receptive:
            raise ConfigError(
                f"waveform of {x.shape[-1]} samples is shorter than one frame ({self.receptive} "
                "samples); pad it or drop it."
            )
        first_lengths = None
        if lengths is not None and self.mode == "group_norm":
            _, kernel, stride = self.specs[0]
            first_lengths = ((lengths.to(x.device) - kernel) // stride + 1).clamp(min=1)
        for index, layer in enumerate(self.layers):
            x = layer(x, first_lengths) if index == 0 else layer(x)
        return x

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, stride={self.stride}, receptive={self.receptive}"
