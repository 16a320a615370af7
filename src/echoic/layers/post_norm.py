"""Post-LayerNorm transformer block (BERT / wav2vec 2.0 / WavLM / BEATs) with DeepNorm scaling.

DeepNorm (Wang et al. 2022, "DeepNet: Scaling Transformers to 1,000 Layers") up-weights the
residual, ``x = LN(alpha * x + f(x))``, and shrinks the initial value, output and feed-forward
weights by ``beta``. For an ``N``-layer encoder-only model ``alpha = (2N)^(1/4)`` and
``beta = (8N)^(-1/4)`` (:func:`deepnorm_coefficients`); ``alpha = 1`` is the plain post-LN layer.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from echoic.errors import ConfigError
from echoic.layers.attention import Attention
from echoic.layers.block import DropPath
from echoic.layers.mlp import MLP

__all__ = ["PostNormBlock", "deepnorm_coefficients"]


def deepnorm_coefficients(n_layers: int) -> tuple[float, float]:
    """``(alpha, beta)`` of DeepNorm for an encoder-only stack of ``n_layers`` blocks."""
    if n_layers < 1:
        raise ConfigError(f"DeepNorm needs at least one layer; found n_layers={n_layers}.")
    return (2.0 * n_layers) ** 0.25, (8.0 * n_layers) ** -0.25


def _xavier_normal(weight: torch.Tensor, gain: float) -> None:
    """In-place Xavier-normal fill of a ``(fan_out, fan_in)`` matrix (also works on row slices)."""
    fan_out, fan_in = weight.shape
    std = gain * (2.0 / (fan_in + fan_out)) ** 0.5
    with torch.no_grad():
        weight.normal_(0.0, std)


class PostNormBlock(nn.Module):
    """``x = norm1(alpha * x + attn(x))`` then ``x = norm2(alpha * x + mlp(x))``:
    ``(B, N, D)`` → ``(B, N, D)``.

    Weight names: ``attn`` (:class:`Attention`, fused ``qkv`` + ``proj``), ``norm1`` (after
    attention; wav2vec 2.0's ``layer_norm``), ``mlp`` (:class:`MLP`), ``norm2`` (after the MLP;
    ``final_layer_norm``). alpha: residual scale (1 = plain post-LN). drop_path: stochastic-depth
    probability of each branch (the residual ``alpha * x`` is always kept). position_gate: see
    :class:`Attention` (WavLM: ``"input"``, BEATs: ``"query"``). The weights keep PyTorch's default
    initialisation; call :meth:`deepnorm_init` for DeepNorm's.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-5,
        alpha: float = 1.0,
        drop_path: float = 0.0,
        position_gate: Literal["input", "query"] | None = None,
    ) -> None:
        super().__init__()
        if alpha <= 0:
            raise ConfigError(f"DeepNorm alpha must be positive; found {alpha}.")
        self.alpha = float(alpha)
        self.attn = Attention(dim, heads, qkv_bias=qkv_bias, position_gate=position_gate)
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = MLP(dim, int(dim * mlp_ratio))
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.drop_path: nn.Module = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def deepnorm_init(self, beta: float) -> None:
        """DeepNorm initialisation: Xavier-normal with gain ``beta`` for the value, output
        projection and both MLP matrices, gain 1 for query and key; biases to 0."""
        dim = self.norm1.normalized_shape[0]
        qkv = self.attn.qkv.weight
        _xavier_normal(qkv[:dim], 1.0)
        _xavier_normal(qkv[dim : 2 * dim], 1.0)
        _xavier_normal(qkv[2 * dim :], beta)
        for linear in (self.attn.proj, self.mlp.fc1, self.mlp.fc2):
            _xavier_normal(linear.weight, beta)
        for linear in (self.attn.qkv, self.attn.proj, self.mlp.fc1, self.mlp.fc2):
            if linear.bias is not None:
                nn.init.zeros_(linear.bias)

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.alpha == 1.0 else x * self.alpha

    def forward(
        self,
        x: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: ``(B, N, D)``; attn_mask: ``(B, 1, 1, N)`` bool (True = may attend) or None; bias:
        float, broadcastable to ``(B, H, N, N)`` (e.g. a relative position bias), or None."""
        if isinstance(self.drop_path, nn.Identity) or not self.training:
            # residuals go into the output projections (one pass less on inference)
            x = self.norm1(self.attn(x, attn_mask, residual=self._residual(x), bias=bias))
            return self.norm2(self.mlp(x, residual=self._residual(x)))
        x = self.norm1(self._residual(x) + self.drop_path(self.attn(x, attn_mask, bias=bias)))
        return self.norm2(self._residual(x) + self.drop_path(self.mlp(x)))

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:g}"
