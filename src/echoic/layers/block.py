"""Pre-LayerNorm transformer block with optional layer-scale and stochastic depth."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from echoic.layers.attention import Attention
from echoic.layers.mlp import MLP

__all__ = ["Block", "DropPath", "LayerScale"]


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a residual branch for a random subset of items and
    rescale the rest by ``1 / (1 - p)``; identity in eval or when ``p == 0``."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop-path probability must be in [0, 1); found {p}.")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        return x * x.new_empty(shape).bernoulli_(keep).div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LayerScale(nn.Module):
    """Per-channel learnable scale ``gamma * x`` (CaiT), ``gamma`` initialised to ``init``."""

    def __init__(self, dim: int, init: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    """``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``: ``(B, N, D)`` → ``(B, N, D)``.

    layer_scale: initial value of a per-channel scale on both residual branches, or None (default)
    for none. drop_path: stochastic-depth probability of each branch. position_gate: see
    :class:`Attention` (WavLM large: ``"input"``, the normalised attention input gates the bias).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        drop_path: float = 0.0,
        layer_scale: float | None = None,
        position_gate: Literal["input", "query"] | None = None,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, heads, qkv_bias=qkv_bias, position_gate=position_gate)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = MLP(dim, int(dim * mlp_ratio))
        self.ls1: nn.Module = LayerScale(dim, layer_scale) if layer_scale else nn.Identity()
        self.ls2: nn.Module = LayerScale(dim, layer_scale) if layer_scale else nn.Identity()
        self.drop_path: nn.Module = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(
        self,
        x: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: ``(B, N, D)``; attn_mask: ``(B, 1, 1, N)`` bool (True = may attend) or None; bias:
        float, broadcastable to ``(B, H, N, N)`` (a relative position bias), or None."""
        plain = isinstance(self.ls1, nn.Identity) and (
            isinstance(self.drop_path, nn.Identity) or not self.training
        )
        if plain:  # residuals go into the output projections (one pass less on inference)
            x = self.attn(self.norm1(x), attn_mask, residual=x, bias=bias)
            return self.mlp(self.norm2(x), residual=x)
        x = x + self.drop_path(self.ls1(self.attn(self.norm1(x), attn_mask, bias=bias)))
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))
