"""Convolutional positional embedding against transformers' Wav2Vec2PositionalConvEmbedding."""

from __future__ import annotations

import pytest
import torch

from echoic.errors import ConfigError
from echoic.layers import ConvPositionalEmbedding

w2v = pytest.importorskip("transformers.models.wav2vec2.modeling_wav2vec2")
config_module = pytest.importorskip("transformers.models.wav2vec2.configuration_wav2vec2")

B, N, D, G = 2, 11, 16, 4


def _reference(kernel: int) -> w2v.Wav2Vec2PositionalConvEmbedding:
    config = config_module.Wav2Vec2Config(
        hidden_size=D,
        num_conv_pos_embeddings=kernel,
        num_conv_pos_embedding_groups=G,
        feat_extract_activation="gelu",
    )
    torch.manual_seed(kernel)
    reference = w2v.Wav2Vec2PositionalConvEmbedding(config).eval()
    with torch.no_grad():  # g independent of |v|, so a wrong norm axis would show
        for parameter in reference.parameters():
            parameter.normal_(0.0, 0.5)
    return reference


def _g_v_bias(reference) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    weight = reference.conv.parametrizations.weight
    return weight.original0.detach(), weight.original1.detach(), reference.conv.bias.detach()


@pytest.mark.parametrize("kernel", [8, 7], ids=["even", "odd"])
@pytest.mark.parametrize("loader", ["load_weight_norm", "old_state_dict"])
def test_matches_wav2vec2(kernel: int, loader: str):
    reference = _reference(kernel)
    weight_g, weight_v, bias = _g_v_bias(reference)
    assert weight_g.shape == (1, 1, kernel) and weight_v.shape == (D, D // G, kernel)
    ours = ConvPositionalEmbedding(D, kernel, G).eval()
    if loader == "load_weight_norm":
        ours.load_weight_norm(weight_g, weight_v, bias)
    else:  # public checkpoints store the pair as weight_g / weight_v
        ours.load_state_dict(
            {"conv.weight_g": weight_g, "conv.weight_v": weight_v, "conv.bias": bias}
        )
    x = torch.randn(B, N, D)
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            got, expected = ours(x), reference(x)
        assert got.shape == (B, N, D)
        diff = (got - expected).abs().max().item()
        assert diff <= 1e-5, diff


def test_even_kernel_window_is_causal_shifted():
    """Output frame t depends on input frames t - K/2 .. t + K/2 - 1 (last padded frame dropped)."""
    kernel, t = 6, 5
    ours = ConvPositionalEmbedding(D, kernel, G)
    x = torch.randn(1, N, D, requires_grad=True)
    ours(x)[0, t].sum().backward()
    touched = (x.grad[0].abs().sum(dim=-1) > 0).nonzero().flatten().tolist()
    assert touched == list(range(t - kernel // 2, t + kernel // 2))


def test_rejects_bad_shapes():
    with pytest.raises(ConfigError):
        ConvPositionalEmbedding(D, 8, groups=3)
    with pytest.raises(ConfigError, match="weight_v"):
        ConvPositionalEmbedding(D, 8, G).load_weight_norm(torch.ones(1, 1, 8), torch.ones(D, D, 8))
