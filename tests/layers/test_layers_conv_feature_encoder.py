"""Conv feature encoder against transformers' Wav2Vec2FeatureEncoder, and its declared geometry."""

from __future__ import annotations

import pytest
import torch

from echoic.errors import ConfigError
from echoic.layers import WAV2VEC2_CONV_LAYERS, ConvFeatureEncoder

w2v = pytest.importorskip("transformers.models.wav2vec2.modeling_wav2vec2")
config_module = pytest.importorskip("transformers.models.wav2vec2.configuration_wav2vec2")

# wav2vec 2.0's kernels and strides at a tiny width (the geometry does not depend on the width)
TINY = [(6, kernel, stride) for _, kernel, stride in WAV2VEC2_CONV_LAYERS]


def _reference(mode: str, conv_bias: bool) -> w2v.Wav2Vec2FeatureEncoder:
    config = config_module.Wav2Vec2Config(
        conv_dim=[dim for dim, _, _ in TINY],
        conv_kernel=[kernel for _, kernel, _ in TINY],
        conv_stride=[stride for _, _, stride in TINY],
        feat_extract_norm={"group_norm": "group", "layer_norm": "layer"}[mode],
        feat_extract_activation="gelu",
        conv_bias=conv_bias,
    )
    torch.manual_seed(0)
    reference = w2v.Wav2Vec2FeatureEncoder(config).eval()
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.normal_(0.0, 0.5)
    return reference


@pytest.mark.parametrize(
    ("mode", "conv_bias"), [("group_norm", False), ("layer_norm", True), ("layer_norm", False)]
)
def test_matches_wav2vec2_feature_encoder(mode: str, conv_bias: bool):
    reference = _reference(mode, conv_bias)
    ours = ConvFeatureEncoder(TINY, mode=mode, conv_bias=conv_bias).eval()
    state = {
        key.replace("conv_layers.", "layers.").replace(".layer_norm.", ".norm."): value
        for key, value in reference.state_dict().items()
    }
    ours.load_state_dict(state)  # strict: same set of weights
    waveform = torch.randn(2, 1234)
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            got, expected = ours(waveform), reference(waveform)
        assert got.shape == expected.shape == (2, 6, ours.num_frames(1234))
        diff = (got - expected).abs().max().item()
        assert diff <= 1e-5, diff
    assert torch.equal(ours(waveform[:, None]), got)  # (B, 1, S) is the same input


def test_default_geometry_is_wav2vec2s():
    encoder = ConvFeatureEncoder(TINY)
    assert encoder.stride == 320 and encoder.receptive == 400
    assert ConvFeatureEncoder().dim == 512
    assert encoder.num_frames(16000) == 49  # one second at 16 kHz


def test_num_frames_matches_output_lengths():
    torch.manual_seed(1)
    encoder = ConvFeatureEncoder([(3, 5, 3), (3, 4, 2), (3, 3, 1), (3, 2, 2)]).eval()
    lengths = list(range(encoder.receptive, encoder.receptive + 200))
    with torch.no_grad():
        for n in lengths:
            assert encoder(torch.randn(1, n)).shape[-1] == encoder.num_frames(n), n
    as_tensor = encoder.num_frames(torch.tensor([0, encoder.receptive - 1, *lengths]))
    assert as_tensor.tolist() == [0, 0, *(encoder.num_frames(n) for n in lengths)]
    with torch.no_grad():
        for n in (3000, 4001):  # the tiny wav2vec 2.0 stack, longer inputs
            assert ConvFeatureEncoder(TINY)(torch.randn(1, n)).shape[-1] == (n - 400) // 320 + 1


def test_receptive_field_and_stride_are_what_frames_see():
    """In layer_norm mode (the group_norm statistics span the whole input, see the module doc)."""
    torch.manual_seed(2)
    encoder = ConvFeatureEncoder([(3, 5, 3), (3, 4, 2), (3, 3, 1), (3, 2, 2)], mode="layer_norm")
    waveform = torch.randn(1, 400, requires_grad=True)
    frames = encoder(waveform)
    for t in (0, 3, frames.shape[-1] - 1):
        (grad,) = torch.autograd.grad(frames[0, :, t].sum(), waveform, retain_graph=True)
        seen = grad[0].nonzero().flatten()
        assert seen.min().item() == t * encoder.stride
        assert seen.max().item() - seen.min().item() + 1 == encoder.receptive


def test_multichannel_input_and_errors():
    encoder = ConvFeatureEncoder([(4, 3, 2)], in_channels=2)
    assert encoder(torch.randn(2, 2, 11)).shape == (2, 4, 5)
    with pytest.raises(ConfigError, match="waveform"):
        encoder(torch.randn(2, 11))
    with pytest.raises(ConfigError, match="shorter than one frame"):
        ConvFeatureEncoder(TINY)(torch.randn(1, 399))
    with pytest.raises(ConfigError, match="mode"):
        ConvFeatureEncoder(TINY, mode="batch_norm")  # type: ignore[arg-type]
