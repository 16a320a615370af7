"""Multi-head self-attention with a fused qkv projection and key-padding masks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from echoic.errors import ConfigError
from echoic.layers import fused

__all__ = ["Attention", "padding_to_attn_mask"]


def padding_to_attn_mask(padding_mask: torch.Tensor | None) -> torch.Tensor | None:
    """Turn a key padding mask into a mask for ``scaled_dot_product_attention``.

    padding_mask: ``(B, N)`` bool, True on padding keys. Returns ``(B, 1, 1, N)`` bool, True where
    attention is allowed, or None when nothing is padded. Items whose every token is padding attend
    to all of them (their outputs are meaningless but finite, instead of NaN).
    """
    if padding_mask is None:
        return None
    if padding_mask.dtype != torch.bool or padding_mask.ndim != 2:
        raise ConfigError(
            f"padding_mask must be a (B, N) bool tensor, True on padding; found "
            f"{padding_mask.dtype} of shape {tuple(padding_mask.shape)}."
        )
    allowed = ~padding_mask | padding_mask.all(dim=1, keepdim=True)
    return allowed[:, None, None, :]


class Attention(nn.Module):
    """Self-attention: ``(B, N, D)`` → ``(B, N, D)``.

    One ``Linear(D, 3D)`` produces q, k, v (output channels ordered ``[q | k | v]``, each split into
    ``heads`` contiguous groups of ``D / heads``); attention runs in
    ``torch.nn.functional.scaled_dot_product_attention``.
    """

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if heads < 1 or dim % heads:
            raise ConfigError(
                f"model width {dim} must split evenly into {heads} heads; choose heads "
                f"dividing {dim}."
            )
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        x: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        residual: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: ``(B, N, D)``; attn_mask: ``(B, 1, 1, N)`` bool (True = may attend) from
        :func:`padding_to_attn_mask`, or None. Returns ``(B, N, D)``, plus ``residual`` when given
        (added inside the output projection on the fused inference path)."""
        batch, n_tokens, dim = x.shape
        qkv = fused.linear(x, self.qkv.weight, self.qkv.bias)
        qkv = qkv.view(batch, n_tokens, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, N, Dh), strided views
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, H, N, Dh)
        # The CPU and CUDA kernels lay the output out as (B, N, H, Dh): this reshape is free there.
        out = out.transpose(1, 2).reshape(batch, n_tokens, dim)
        if residual is None:
            return fused.linear(out, self.proj.weight, self.proj.bias)
        return fused.linear_add(out, self.proj.weight, self.proj.bias, residual)
