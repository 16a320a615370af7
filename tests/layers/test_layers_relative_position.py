"""Bucketed and gated relative position biases against transformers' WavLM attention and T5."""

from __future__ import annotations

import pytest
import torch

from echoic.layers import Attention, RelativePositionBias, padding_to_attn_mask
from echoic.layers.relative_position import relative_position_bucket

wavlm = pytest.importorskip("transformers.models.wavlm.modeling_wavlm")
t5 = pytest.importorskip("transformers.models.t5.modeling_t5")

B, N, D, H = 2, 30, 16, 4
BUCKETS, MAX_DISTANCE = 16, 40  # small enough that N = 30 reaches the log-spaced buckets


def _pair(seed: int = 0) -> tuple[wavlm.WavLMAttention, Attention, RelativePositionBias]:
    """A WavLM attention with random weights, and ours loaded with the same weights."""
    torch.manual_seed(seed)
    reference = wavlm.WavLMAttention(D, H, num_buckets=BUCKETS, max_distance=MAX_DISTANCE).eval()
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.normal_(0.0, 0.5)
    attn = Attention(D, H, position_gate="input").eval()
    position = RelativePositionBias(H, BUCKETS, MAX_DISTANCE).eval()
    with torch.no_grad():
        attn.qkv.weight.copy_(
            torch.cat([reference.q_proj.weight, reference.k_proj.weight, reference.v_proj.weight])
        )
        attn.qkv.bias.copy_(
            torch.cat([reference.q_proj.bias, reference.k_proj.bias, reference.v_proj.bias])
        )
        attn.proj.load_state_dict(reference.out_proj.state_dict())
        attn.gate.linear.load_state_dict(reference.gru_rel_pos_linear.state_dict())
        attn.gate.const.copy_(reference.gru_rel_pos_const)
        position.embedding.load_state_dict(reference.rel_attn_embed.state_dict())
    return reference, attn, position


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask:UserWarning")
@pytest.mark.parametrize("grad", [False, True], ids=["inference", "autograd"])
@pytest.mark.parametrize("padded", [False, True])
def test_matches_wavlm_attention(grad: bool, padded: bool):
    reference, attn, position = _pair()
    x = torch.randn(B, N, D)
    padding = torch.zeros(B, N, dtype=torch.bool)
    if padded:
        padding[1, 21:] = True
    with torch.set_grad_enabled(grad):
        expected, _, expected_bias = reference(x, attention_mask=(~padding).long())
        bias = position(N)
        got = attn(x, padding_to_attn_mask(padding), bias=bias)
    assert bias.shape == (1, H, N, N)
    bias_diff = (bias.expand(B, H, N, N).reshape(B * H, N, N) - expected_bias).abs().max().item()
    assert bias_diff <= 1e-6, bias_diff
    valid = ~padding  # outputs of padded queries are meaningless in both
    out_diff = (got - expected)[valid].abs().max().item()
    assert out_diff <= 1e-5, out_diff


def test_gate_changes_the_output():
    """The parity above would also pass with a gate of 1 if WavLM's gate were trivial: check not."""
    _, attn, position = _pair()
    x = torch.randn(B, N, D)
    with torch.no_grad():
        gated = attn(x, bias=position(N))
        attn.gate = None
        plain = attn(x, bias=position(N))
    assert (gated - plain).abs().max().item() > 1e-3


@pytest.mark.parametrize(("buckets", "max_distance"), [(320, 800), (BUCKETS, MAX_DISTANCE)])
def test_bidirectional_buckets_match_wavlm(buckets: int, max_distance: int):
    reference = wavlm.WavLMAttention(D, H, num_buckets=buckets, max_distance=max_distance)
    relative = torch.arange(-3000, 3001)
    expected = reference._relative_positions_bucket(relative)
    assert torch.equal(relative_position_bucket(relative, buckets, max_distance), expected)


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize(("buckets", "max_distance"), [(32, 128), (320, 800)])
def test_buckets_match_t5(bidirectional: bool, buckets: int, max_distance: int):
    relative = torch.arange(-3000, 3001)
    expected = t5.T5Attention._relative_position_bucket(
        relative, bidirectional=bidirectional, num_buckets=buckets, max_distance=max_distance
    )
    got = relative_position_bucket(relative, buckets, max_distance, bidirectional)
    assert torch.equal(got, expected)
    assert got.min() >= 0 and got.max() < buckets


def test_bias_layout_and_rectangular_shape():
    position = RelativePositionBias(H, BUCKETS, MAX_DISTANCE, bidirectional=False)
    bias = position(5, 9)
    assert bias.shape == (1, H, 5, 9)
    buckets = position.buckets(5, 9)
    table = position.embedding.weight  # (num_buckets, H)
    for i, j in [(0, 0), (4, 0), (2, 8), (4, 1)]:
        assert torch.equal(bias[0, :, i, j], table[buckets[i, j]])
    assert torch.equal(
        buckets[0, 1:], torch.zeros(8, dtype=torch.long)
    )  # unidirectional: j > i → 0
