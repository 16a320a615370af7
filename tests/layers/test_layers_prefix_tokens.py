"""[CLS] / distillation tokens prepended to a sequence and its padding mask."""

from __future__ import annotations

import pytest
import torch

from echoic.errors import ConfigError
from echoic.layers import PrefixTokens

B, N, D = 3, 5, 8


@pytest.mark.parametrize("n_tokens", [0, 1, 2])
def test_prepends_tokens_and_mask_columns(n_tokens: int):
    prefix = PrefixTokens(D, n_tokens)
    x = torch.randn(B, N, D)
    padding = torch.zeros(B, N, dtype=torch.bool)
    padding[1, 3:] = True
    padding[2, :] = True
    out, mask = prefix(x, padding)
    assert out.shape == (B, n_tokens + N, D)
    assert mask is not None and mask.shape == (B, n_tokens + N) and mask.dtype == torch.bool
    assert not mask[:, :n_tokens].any()  # prefix tokens are never padding
    assert torch.equal(mask[:, n_tokens:], padding)
    assert torch.equal(out[:, n_tokens:], x)
    if n_tokens:
        for item in range(B):
            assert torch.equal(out[item, :n_tokens], prefix.tokens[0])
        assert out.requires_grad  # the tokens are learned
    else:
        assert out is x and mask is padding and prefix.tokens is None
        assert len(list(prefix.parameters())) == 0


def test_no_mask_in_no_mask_out():
    out, mask = PrefixTokens(D, 2)(torch.randn(B, N, D))
    assert out.shape == (B, N + 2, D) and mask is None


def test_tokens_are_distinct_parameters():
    prefix = PrefixTokens(D, 2)
    assert prefix.tokens.shape == (1, 2, D)
    assert not torch.equal(prefix.tokens[0, 0], prefix.tokens[0, 1])


def test_rejects_three_tokens():
    with pytest.raises(ConfigError, match="n_tokens"):
        PrefixTokens(D, 3)
