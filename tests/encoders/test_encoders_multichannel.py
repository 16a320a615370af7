"""Multichannel patch embedding and ViT input: conv2d equivalence, mono bit identity, pairing."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from echoic.checkpoint import EchoicModel, ModelConfig
from echoic.encoders import build_encoder
from echoic.errors import CheckpointError, ConfigError
from echoic.layers import PatchEmbed, fused, patchify
from echoic.types import Features


def old_patch_embed(values: torch.Tensor, proj: torch.nn.Linear, patch: tuple[int, int]):
    """A copy of the mono computation before channels existed: ``(B, F, T)`` → ``(B, N, D)``."""
    patch_f, patch_t = patch
    batch, n_bins, n_frames = values.shape
    n_freq, n_time = n_bins // patch_f, math.ceil(n_frames / patch_t)
    extra = n_time * patch_t - n_frames
    if extra:
        values = F.pad(values, (0, extra))
    patches = values.reshape(batch, n_freq, patch_f, n_time, patch_t).permute(0, 3, 1, 2, 4)
    patches = patches.reshape(batch, n_time * n_freq, patch_f * patch_t)
    return fused.linear(patches, proj.weight, proj.bias)


@pytest.mark.parametrize("patch", [(16, 16), (16, 8), (32, 4)])
def test_mono_patch_embedding_is_unchanged_bit_for_bit(patch: tuple[int, int]):
    torch.manual_seed(0)
    embed = PatchEmbed(32, patch, 24)  # in_channels defaults to 1
    values = torch.randn(3, 32, 37)
    with torch.no_grad():
        assert torch.equal(embed(values), old_patch_embed(values, embed.proj, patch))
        keep = torch.tensor([[0, 3, 5], [1, 2, 4], [5, 4, 0]])
        assert torch.equal(embed(values, keep), embed(values)[torch.arange(3)[:, None], keep])


@pytest.mark.parametrize(("channels", "patch"), [(2, (16, 16)), (3, (16, 8)), (5, (32, 4))])
def test_multichannel_patch_embedding_is_a_strided_conv2d(channels: int, patch: tuple[int, int]):
    torch.manual_seed(1)
    n_bins, n_frames, dim = 32, 48, 20  # n_frames a multiple of every patch_t: conv covers all
    embed = PatchEmbed(n_bins, patch, dim, in_channels=channels)
    assert embed.proj.weight.shape == (dim, channels * patch[0] * patch[1])
    values = torch.randn(2, channels, n_bins, n_frames)
    weight = embed.proj.weight.reshape(dim, channels, *patch)  # channel-major, then df * pt + dt
    conv = F.conv2d(values, weight, embed.proj.bias, stride=patch)  # (B, D, nF, nT)
    expected = conv.permute(0, 3, 2, 1).reshape(2, -1, dim)  # time-major tokens
    with torch.no_grad():
        torch.testing.assert_close(embed(values), expected, rtol=0, atol=1e-5)


def test_multichannel_patchify_order_is_channel_major_inside_a_patch():
    channels, n_bins, n_frames, patch = 3, 32, 37, (16, 8)
    c = torch.arange(channels, dtype=torch.float32)[:, None, None]
    f = torch.arange(n_bins, dtype=torch.float32)[None, :, None]
    t = torch.arange(n_frames, dtype=torch.float32)[None, None, :]
    values = (100_000 * (c + 1) + 1000 * (f + 1) + t + 1)[None]
    patches = patchify(values, patch)
    pf, pt = patch
    n_freq, n_time = n_bins // pf, math.ceil(n_frames / pt)
    assert patches.shape == (1, n_freq * n_time, channels * pf * pt)
    for token in (0, 1, n_freq, n_freq * n_time - 1):
        tp, fp = divmod(token, n_freq)
        for pixel in (0, pt - 1, pf * pt, pf * pt + pt + 2, channels * pf * pt - 1):
            ch, rest = divmod(pixel, pf * pt)
            df, dt = divmod(rest, pt)
            frame, bin_ = tp * pt + dt, fp * pf + df
            want = 100_000 * (ch + 1) + 1000 * (bin_ + 1) + frame + 1 if frame < n_frames else 0
            assert patches[0, token, pixel].item() == want, (token, pixel)
    # channel c of the multichannel patches is the mono patchify of channel c
    for ch in range(channels):
        part = patches[..., ch * pf * pt : (ch + 1) * pf * pt]
        assert torch.equal(part, patchify(values[:, ch], patch))


def test_patch_embedding_rejects_the_wrong_channel_count():
    with pytest.raises(
        ConfigError, match=r"2-channel features \(B, 2, F, T\).*found 1.*in_channels=1"
    ):
        PatchEmbed(32, (16, 16), 8, in_channels=2)(torch.zeros(1, 32, 16))
    with pytest.raises(ConfigError, match=r"1-channel.*found 3.*in_channels=3"):
        PatchEmbed(32, (16, 16), 8)(torch.zeros(1, 3, 32, 16))
    with pytest.raises(ConfigError, match="in_channels must be an integer >= 1"):
        PatchEmbed(32, (16, 16), 8, in_channels=0)


def features(values: torch.Tensor, lengths: list[int]) -> Features:
    return Features(values, torch.tensor(lengths), hop_s=0.01, first_centre_s=0.0125)


def test_vit_reads_multichannel_features():
    torch.manual_seed(2)
    encoder = build_encoder("vit_test", in_channels=2)
    assert encoder.spec.channels == 2 and encoder.spec.token_input_size == 2 * 16 * 16
    values = torch.randn(2, 2, 128, 40)
    out = encoder(features(values, [40, 20]))
    assert out.last.shape == (2, 8 * 3, 32) and out.grid == (8, 3)
    assert out.padding_mask[1].tolist() == [False] * 16 + [True] * 8
    targets = encoder.token_targets(features(values, [40, 20]))
    assert targets.shape == (2, 24, 2 * 16 * 16)
    swapped = encoder(features(values.flip(1), [40, 20]))
    assert not torch.allclose(swapped.last, out.last)
    keep = torch.tensor([[0, 5, 9], [2, 3, 4]])
    kept = encoder(features(values, [40, 40]), keep_idx=keep)
    assert kept.last.shape == (2, 3, 32)


def test_vit_names_the_channel_fix():
    mono = build_encoder("vit_test")
    with pytest.raises(ConfigError, match=r"found 2 channel.*in_channels=2"):
        mono(features(torch.zeros(1, 2, 128, 16), [16]))
    stereo = build_encoder("vit_test", in_channels=2)
    with pytest.raises(ConfigError, match=r"\(B, 2, F, T\).*found 1 channel"):
        stereo(features(torch.zeros(1, 128, 16), [16]))
    with pytest.raises(ConfigError, match="in_channels"):
        build_encoder("vit_test", in_channels=0)


def test_pairing_compares_the_frontend_output_channels():
    frontend = {"n_mels": 128, "channels": 2, "interchannel": "ild+ipd"}
    with pytest.raises(CheckpointError, match=r"gives 5 channel.*ipd_sin1.*reads 2.*in_channels=5"):
        EchoicModel(
            ModelConfig(
                encoder="vit_test",
                encoder_config={"in_channels": 2},
                frontend="kaldi_fbank",
                frontend_config=frontend,
            )
        )
    model = EchoicModel(
        ModelConfig(
            encoder="vit_test",
            encoder_config={"in_channels": 5},
            frontend="kaldi_fbank",
            frontend_config=frontend,
        )
    )
    assert model.frontend.out_channels == model.encoder.spec.channels == 5
