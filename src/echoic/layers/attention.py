"""Multi-head self-attention with a fused qkv projection, key-padding masks and additive biases."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from echoic.errors import ConfigError
from echoic.layers import fused
from echoic.layers.relative_position import GatedRelativePositionBias

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

    position_gate: None (default), or where a :class:`GatedRelativePositionBias` reads its gate
    from when a ``bias`` is passed: ``"input"`` — the attention input split into heads (WavLM),
    ``"query"`` — the projected query before scaling (BEATs). The gate module is ``self.gate``.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        qkv_bias: bool = True,
        position_gate: Literal["input", "query"] | None = None,
    ) -> None:
        super().__init__()
        if heads < 1 or dim % heads:
            raise ConfigError(
                f"model width {dim} must split evenly into {heads} heads; choose heads "
                f"dividing {dim}."
            )
        if position_gate not in (None, "input", "query"):
            raise ConfigError(
                f"position_gate must be None, 'input' (WavLM) or 'query' (BEATs); found "
                f"{position_gate!r}."
            )
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.position_gate = position_gate
        self.gate = (
            GatedRelativePositionBias(heads, self.head_dim) if position_gate is not None else None
        )

    def forward(
        self,
        x: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        residual: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: ``(B, N, D)``; attn_mask: ``(B, 1, 1, N)`` bool (True = may attend) from
        :func:`padding_to_attn_mask`, or None; bias: float, broadcastable to ``(B, H, N, N)``,
        added to the logits ``q·k / sqrt(Dh)`` (gated first when ``position_gate`` is set), or None.
        Keys excluded by ``attn_mask`` stay excluded whatever the bias. Returns ``(B, N, D)``, plus
        ``residual`` when given (added inside the output projection on the fused inference path)."""
        batch, n_tokens, dim = x.shape
        qkv = fused.apply_linear(self.qkv, x)
        qkv = qkv.view(batch, n_tokens, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, N, Dh), strided views
        if bias is not None:
            attn_mask = self._float_mask(x, q, bias, attn_mask)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, H, N, Dh)
        # The CPU and CUDA kernels lay the output out as (B, N, H, Dh): this reshape is free there.
        out = out.transpose(1, 2).reshape(batch, n_tokens, dim)
        if residual is None:
            return fused.apply_linear(self.proj, out)
        return fused.apply_linear_add(self.proj, out, residual)

    def _float_mask(
        self,
        x: torch.Tensor,
        q: torch.Tensor,
        bias: torch.Tensor,
        attn_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """The additive ``(B or 1, H or 1, N, N)`` mask SDPA receives when a bias is given."""
        if not bias.is_floating_point():
            raise ConfigError(
                f"attention bias must be a float tensor added to the logits; found {bias.dtype}. "
                "Pass boolean padding through attn_mask."
            )
        if self.gate is not None:
            if self.position_gate == "input":
                gate_input = x.unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)
            else:
                gate_input = q
            bias = self.gate(gate_input, bias)
        bias = bias.to(q.dtype)
        if attn_mask is None:
            return bias
        return torch.where(attn_mask, bias, float("-inf"))
