"""Attention with an additive float bias: explicit-formula parity, and the unchanged bool path."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from echoic.errors import ConfigError
from echoic.layers import Attention, fused, padding_to_attn_mask

B, N, D, H = 2, 7, 16, 4


def _old_forward(attn: Attention, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
    """Attention.forward as it was before biases existed (saved copy of the computation)."""
    batch, n_tokens, dim = x.shape
    qkv = fused.linear(x, attn.qkv.weight, attn.qkv.bias)
    qkv = qkv.view(batch, n_tokens, 3, attn.heads, attn.head_dim)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    out = out.transpose(1, 2).reshape(batch, n_tokens, dim)
    return fused.linear(out, attn.proj.weight, attn.proj.bias)


def _explicit(
    attn: Attention, x: torch.Tensor, bias: torch.Tensor, padding: torch.Tensor | None
) -> torch.Tensor:
    """softmax(q k^T / sqrt(Dh) + bias + mask) v, then the output projection, in plain ops."""
    q, k, v = (
        F.linear(x, w, b).view(B, N, H, D // H).transpose(1, 2)
        for w, b in zip(attn.qkv.weight.chunk(3), attn.qkv.bias.chunk(3), strict=True)
    )
    logits = q @ k.transpose(-1, -2) / math.sqrt(D // H) + bias
    if padding is not None:
        logits = logits.masked_fill(padding[:, None, None, :], float("-inf"))
    out = (logits.softmax(dim=-1) @ v).transpose(1, 2).reshape(B, N, D)
    return F.linear(out, attn.proj.weight, attn.proj.bias)


@pytest.fixture
def attn() -> Attention:
    torch.manual_seed(0)
    return Attention(D, H).eval()


@pytest.fixture
def padding() -> torch.Tensor:
    padding = torch.zeros(B, N, dtype=torch.bool)
    padding[1, 4:] = True
    return padding


@pytest.mark.parametrize("grad", [False, True], ids=["inference", "autograd"])
@pytest.mark.parametrize("padded", [False, True])
def test_bool_path_bit_identical(attn: Attention, padding: torch.Tensor, grad: bool, padded: bool):
    x = torch.randn(B, N, D)
    mask = padding_to_attn_mask(padding if padded else None)
    with torch.set_grad_enabled(grad):
        assert torch.equal(attn(x, mask), _old_forward(attn, x, mask))
        assert torch.equal(attn(x, mask, bias=None), _old_forward(attn, x, mask))


@pytest.mark.parametrize("shape", [(1, H, N, N), (B, 1, N, N), (B, H, N, N), (N, N)])
@pytest.mark.parametrize("padded", [False, True])
def test_bias_matches_formula(attn: Attention, padding: torch.Tensor, shape, padded: bool):
    x = torch.randn(B, N, D)
    bias = 3 * torch.randn(shape)
    pad = padding if padded else None
    expected = _explicit(attn, x, bias, pad)
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            got = attn(x, padding_to_attn_mask(pad), bias=bias)
        diff = (got - expected).abs().max().item()
        assert diff <= 1e-5, diff


def test_padded_keys_excluded_despite_large_bias(attn: Attention, padding: torch.Tensor):
    x = torch.randn(B, N, D)
    bias = torch.zeros(1, H, N, N)
    bias[..., 4:] = 1e4  # would dominate the softmax if padding leaked through
    with torch.no_grad():
        got = attn(x, padding_to_attn_mask(padding), bias=bias)
        # item 1 only sees its first 4 tokens: same as running it alone, truncated
        alone = attn(x[1:, :4], None, bias=bias[..., :4, :4])
    assert (got[1, :4] - alone[0]).abs().max().item() <= 1e-5


def test_residual_is_added_with_bias(attn: Attention):
    x, residual, bias = torch.randn(B, N, D), torch.randn(B, N, D), torch.randn(1, H, N, N)
    with torch.no_grad():
        diff = (attn(x, None, residual=residual, bias=bias) - attn(x, bias=bias) - residual).abs()
    assert diff.max().item() <= 1e-5


def test_query_gate_matches_formula():
    torch.manual_seed(1)
    attn = Attention(D, H, position_gate="query").eval()
    torch.nn.init.normal_(attn.gate.const)
    x, bias = torch.randn(B, N, D), torch.randn(1, H, N, N)
    q = F.linear(x, attn.qkv.weight[:D], attn.qkv.bias[:D]).view(B, N, H, D // H).transpose(1, 2)
    logits = F.linear(q, attn.gate.linear.weight, attn.gate.linear.bias)  # (B, H, N, 8)
    a = torch.sigmoid(logits[..., :4].sum(-1, keepdim=True))
    b = torch.sigmoid(logits[..., 4:].sum(-1, keepdim=True))
    gated = (a * (b * attn.gate.const - 1) + 2) * bias
    with torch.no_grad():
        diff = (attn(x, bias=bias) - _explicit(attn, x, gated, None)).abs().max().item()
    assert diff <= 1e-5, diff


def test_rejects_bool_bias_and_unknown_gate(attn: Attention):
    with pytest.raises(ConfigError, match="float"):
        attn(torch.randn(B, N, D), bias=torch.ones(1, H, N, N, dtype=torch.bool))
    with pytest.raises(ConfigError, match="position_gate"):
        Attention(D, H, position_gate="key")  # type: ignore[arg-type]
