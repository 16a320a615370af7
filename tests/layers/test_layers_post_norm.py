"""Post-LN block: parity with transformers' Wav2Vec2EncoderLayer, DeepNorm scaling and init."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from echoic.layers import PostNormBlock, deepnorm_coefficients, padding_to_attn_mask

w2v = pytest.importorskip("transformers.models.wav2vec2.modeling_wav2vec2")
config_module = pytest.importorskip("transformers.models.wav2vec2.configuration_wav2vec2")

B, N, D, H = 2, 9, 16, 4


def _reference_layer(seed: int = 0) -> w2v.Wav2Vec2EncoderLayer:
    config = config_module.Wav2Vec2Config(
        hidden_size=D,
        num_attention_heads=H,
        intermediate_size=4 * D,
        hidden_act="gelu",
        layer_norm_eps=1e-5,
    )
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    layer = w2v.Wav2Vec2EncoderLayer(config).eval()
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.normal_(0.0, 0.5)
    return layer


def _load(block: PostNormBlock, layer: w2v.Wav2Vec2EncoderLayer) -> None:
    attention = layer.attention
    with torch.no_grad():
        block.attn.qkv.weight.copy_(
            torch.cat([attention.q_proj.weight, attention.k_proj.weight, attention.v_proj.weight])
        )
        block.attn.qkv.bias.copy_(
            torch.cat([attention.q_proj.bias, attention.k_proj.bias, attention.v_proj.bias])
        )
        block.attn.proj.load_state_dict(attention.out_proj.state_dict())
        block.norm1.load_state_dict(layer.layer_norm.state_dict())
        block.mlp.fc1.load_state_dict(layer.feed_forward.intermediate_dense.state_dict())
        block.mlp.fc2.load_state_dict(layer.feed_forward.output_dense.state_dict())
        block.norm2.load_state_dict(layer.final_layer_norm.state_dict())


@pytest.mark.parametrize("grad", [False, True], ids=["inference", "autograd"])
@pytest.mark.parametrize("padded", [False, True])
def test_matches_wav2vec2_encoder_layer(grad: bool, padded: bool):
    layer = _reference_layer()
    block = PostNormBlock(D, H, mlp_ratio=4.0, norm_eps=1e-5).eval()
    _load(block, layer)
    x = torch.randn(B, N, D)
    padding = torch.zeros(B, N, dtype=torch.bool)
    if padded:
        padding[0, 6:] = True
    additive = torch.zeros(B, 1, 1, N).masked_fill(padding[:, None, None], torch.finfo().min)
    with torch.set_grad_enabled(grad):
        expected = layer(x, attention_mask=additive if padded else None)
        got = block(x, padding_to_attn_mask(padding if padded else None))
    diff = (got - expected)[~padding].abs().max().item()
    assert diff <= 1e-5, diff


def _explicit_block(block: PostNormBlock, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``LN(a x + attn(x))``, ``LN(a h + mlp(h))`` written out with plain ops."""
    alpha, attn = block.alpha, block.attn
    q, k, v = (
        F.linear(x, w, b).view(B, N, H, D // H).transpose(1, 2)
        for w, b in zip(attn.qkv.weight.chunk(3), attn.qkv.bias.chunk(3), strict=True)
    )
    weights = (q @ k.transpose(-1, -2) / math.sqrt(D // H) + bias).softmax(dim=-1)
    attended = F.linear(
        (weights @ v).transpose(1, 2).reshape(B, N, D), attn.proj.weight, attn.proj.bias
    )
    h = F.layer_norm(alpha * x + attended, (D,), block.norm1.weight, block.norm1.bias, 1e-5)
    mlp = block.mlp
    ffn = F.linear(F.gelu(F.linear(h, mlp.fc1.weight, mlp.fc1.bias)), mlp.fc2.weight, mlp.fc2.bias)
    return F.layer_norm(alpha * h + ffn, (D,), block.norm2.weight, block.norm2.bias, 1e-5)


@pytest.mark.parametrize("grad", [False, True], ids=["inference", "autograd"])
def test_deepnorm_alpha_and_bias_match_formula(grad: bool):
    alpha, _ = deepnorm_coefficients(12)
    torch.manual_seed(1)
    block = PostNormBlock(D, H, alpha=alpha).eval()
    with torch.no_grad():
        for norm in (block.norm1, block.norm2):
            norm.weight.normal_()
            norm.bias.normal_()
    x, bias = torch.randn(B, N, D), torch.randn(1, H, N, N)
    with torch.set_grad_enabled(grad):
        got = block(x, bias=bias)
    diff = (got - _explicit_block(block, x, bias)).abs().max().item()
    assert diff <= 1e-5, diff
    with torch.no_grad():  # alpha really enters: the plain post-LN layer differs
        block.alpha = 1.0
        assert (block(x, bias=bias) - got).abs().max().item() > 1e-2


def test_training_path_equals_inference_path_without_drop():
    torch.manual_seed(2)
    block = PostNormBlock(D, H, alpha=1.7, drop_path=0.5)
    x = torch.randn(B, N, D)
    with torch.no_grad():
        block.eval()
        fused_path = block(x)
    torch.manual_seed(3)
    block.train()
    trained = block(x)  # drop path active: some items keep only alpha * x in a branch
    block.drop_path.p = 1e-12  # keeps the composite branch, drops (almost surely) nothing
    composite = block(x)
    assert (composite - fused_path).abs().max().item() <= 1e-5
    assert trained.shape == x.shape


def test_deepnorm_coefficients_and_init():
    alpha, beta = deepnorm_coefficients(12)
    assert alpha == pytest.approx(24**0.25) and beta == pytest.approx(96**-0.25)
    dim = 64
    torch.manual_seed(4)
    block = PostNormBlock(dim, 4)
    block.deepnorm_init(beta)
    xavier = math.sqrt(2.0 / (dim + dim))
    qkv = block.attn.qkv.weight
    stds = {
        "q": (qkv[:dim].std().item(), xavier),
        "k": (qkv[dim : 2 * dim].std().item(), xavier),
        "v": (qkv[2 * dim :].std().item(), beta * xavier),
        "proj": (block.attn.proj.weight.std().item(), beta * xavier),
        "fc1": (block.mlp.fc1.weight.std().item(), beta * math.sqrt(2.0 / (5 * dim))),
        "fc2": (block.mlp.fc2.weight.std().item(), beta * math.sqrt(2.0 / (5 * dim))),
    }
    for name, (measured, expected) in stds.items():
        assert measured == pytest.approx(expected, rel=0.08), name
    assert torch.count_nonzero(block.attn.qkv.bias) == 0
