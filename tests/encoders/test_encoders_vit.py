"""ViTEncoder behaviour: shapes, token→time map, padding and kept-token invariances, gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from echoic.encoders import ViTConfig, ViTEncoder, build_encoder
from echoic.layers.fused import fused_inference, use_fused
from echoic.types import EncoderOutput, Features

HOP_S = 0.01
FIRST_CENTRE_S = 0.0125


def tiny(**overrides) -> ViTEncoder:
    torch.manual_seed(0)
    base = {"dim": 32, "depth": 2, "heads": 2, "n_bins": 32, "patch": (16, 16)}
    return ViTEncoder(ViTConfig(**{**base, **overrides})).eval()


def features(lengths: list[int], n_bins: int = 32, n_frames: int | None = None, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    n_frames = n_frames or max(lengths)
    values = torch.randn(len(lengths), n_bins, n_frames, generator=gen)
    frame = torch.arange(n_frames)
    lens = torch.tensor(lengths)
    values = values * (frame[None, None, :] < lens[:, None, None])
    return Features(values=values, lengths=lens, hop_s=HOP_S, first_centre_s=FIRST_CENTRE_S)


@pytest.mark.parametrize(
    ("patch", "n_bins", "grid"),
    [((16, 16), 32, (2, 7)), ((16, 8), 32, (2, 13)), ((128, 4), 128, (1, 25))],
)
def test_output_shapes_for_each_patching(patch, n_bins, grid):
    enc = tiny(patch=patch, n_bins=n_bins)
    out = enc(features([100, 60], n_bins=n_bins))
    n = grid[0] * grid[1]
    assert isinstance(out, EncoderOutput)
    assert out.grid == grid
    assert enc.num_tokens(100) == n
    assert len(out.layers) == enc.depth + 1 == 3
    assert all(layer.shape == (2, n, 32) for layer in out.layers)
    assert out.cls_layers is not None and len(out.cls_layers) == 3
    assert all(c.shape == (2, 32) for c in out.cls_layers)
    for name in ("padding_mask", "token_index", "time_index", "freq_index", "token_times_s"):
        assert getattr(out, name).shape == (2, n), name
    assert out.token_times_s.dtype == torch.float32
    assert out.patch_hop_s == pytest.approx(HOP_S * patch[1])
    assert torch.equal(out.token_index[0], torch.arange(n))


def test_last_layer_has_final_norm_and_first_is_embedding_plus_positions():
    enc = tiny()
    feats = features([64])
    out = enc(feats)
    with torch.no_grad():
        enc.norm.weight.fill_(2.0)  # a different final norm must change only the last layer
    out2 = enc(feats)
    assert torch.allclose(out.layers[1], out2.layers[1])
    assert not torch.allclose(out.layers[-1], out2.layers[-1])
    # final layer is normalised: per-token mean 0, std 1 before the (default identity) affine
    last = out.layers[-1]
    assert torch.allclose(last.mean(-1), torch.zeros(1, 8), atol=1e-5)
    # index 0 = patch projection + sin-cos positions, computed here from the definition
    pf, pt = enc.patch
    values = feats.values[0].reshape(2, pf, 4, pt).permute(2, 0, 1, 3).reshape(8, pf * pt)
    proj = F.linear(values, enc.patch_embed.proj.weight, enc.patch_embed.proj.bias)
    assert torch.allclose(out.layers[0][0], proj + enc.position_embedding((2, 4)), atol=1e-5)


def test_token_time_map_and_indices():
    enc = tiny(patch=(16, 8))
    out = enc(features([50]))
    n_freq, n_time = out.grid
    assert (n_freq, n_time) == (2, 7)
    for token in range(n_freq * n_time):
        t, f = divmod(token, n_freq)
        assert out.time_index[0, token] == t and out.freq_index[0, token] == f
        expected = FIRST_CENTRE_S + HOP_S * (t * 8 + (8 - 1) / 2)
        assert out.token_times_s[0, token].item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("n_frames", [3000, 7, 1])
def test_any_length_works(n_frames):
    enc = tiny()
    out = enc(features([n_frames]))
    assert out.layers[-1].shape == (1, 2 * math.ceil(n_frames / 16), 32)
    assert torch.isfinite(out.layers[-1]).all()
    assert not out.padding_mask.any()


def test_padding_mask_marks_tokens_past_length():
    enc = tiny()
    out = enc(features([64, 17, 16], n_frames=64))
    per_time = out.padding_mask.view(3, 4, 2)
    assert torch.equal(per_time[..., 0], per_time[..., 1])
    assert per_time[..., 0].tolist() == [
        [False, False, False, False],
        [False, False, True, True],
        [False, True, True, True],
    ]


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("patch", [(16, 16), (16, 8), (32, 4)])
def test_padding_invariance(fused, patch):
    enc = tiny(patch=patch)
    lengths = [100, 61, 9]
    batch = features(lengths, seed=1)
    with fused_inference(fused), torch.set_grad_enabled(not fused):
        together = enc(batch)
        for i, length in enumerate(lengths):
            alone_feats = Features(
                batch.values[i : i + 1, :, :length], batch.lengths[i : i + 1], HOP_S, FIRST_CENTRE_S
            )
            alone = enc(alone_feats)
            n = alone.layers[0].shape[1]
            valid = ~together.padding_mask[i]
            assert int(valid.sum()) == n
            for layer_b, layer_1 in zip(together.layers, alone.layers, strict=True):
                assert torch.allclose(layer_b[i, :n], layer_1[0], atol=1e-5), (i, length)
            assert together.cls_layers is not None and alone.cls_layers is not None
            for cls_b, cls_1 in zip(together.cls_layers, alone.cls_layers, strict=True):
                assert torch.allclose(cls_b[i], cls_1[0], atol=1e-5)


def test_keep_idx_all_tokens_equals_normal_forward():
    enc = tiny()
    feats = features([80, 40])
    full = enc(feats)
    n = full.layers[0].shape[1]
    kept = enc(feats, keep_idx=torch.arange(n).expand(2, n).clone())
    for a, b in zip(full.layers, kept.layers, strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert torch.equal(full.padding_mask, kept.padding_mask)


def manual_subset(enc: ViTEncoder, feats: Features, keep: torch.Tensor) -> list[torch.Tensor]:
    """Reference: patches → projection → positions, gather, CLS, blocks, norm (written out)."""
    pf, pt = enc.patch
    b, n_bins, n_frames = feats.values.shape
    n_time = math.ceil(n_frames / pt)
    padded = F.pad(feats.values, (0, n_time * pt - n_frames))
    n_freq = n_bins // pf
    patches = padded.reshape(b, n_freq, pf, n_time, pt).permute(0, 3, 1, 2, 4)
    patches = patches.reshape(b, n_time * n_freq, pf * pt)
    tokens = F.linear(patches, enc.patch_embed.proj.weight, enc.patch_embed.proj.bias)
    tokens = tokens + enc.position_embedding((n_freq, n_time))
    tokens = torch.stack([tokens[i, keep[i]] for i in range(b)])
    first = torch.stack([torch.arange(n_time).repeat_interleave(n_freq) * pt] * b)
    pad = torch.stack([(first[i] >= feats.lengths[i])[keep[i]] for i in range(b)])
    x = torch.cat([enc.cls_token.expand(b, -1, -1), tokens], dim=1)
    allowed = torch.cat([torch.ones(b, 1, dtype=torch.bool), ~pad], dim=1)
    mask = allowed[:, None, None, :]
    outs = [x]
    for block in enc.blocks:
        h = block.norm1(x)
        qkv = block.attn.qkv(h).view(b, x.shape[1], 3, block.attn.heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        att = scores.masked_fill(~mask, float("-inf")).softmax(-1) @ v
        x = x + block.attn.proj(att.transpose(1, 2).reshape(b, x.shape[1], -1))
        x = x + block.mlp.fc2(F.gelu(block.mlp.fc1(block.norm2(x))))
        outs.append(x)
    outs[-1] = enc.norm(outs[-1])
    return [o[:, 1:] for o in outs]


def test_keep_idx_random_subset_matches_manual_construction():
    enc = tiny(patch=(16, 8))
    feats = features([100, 57])
    n = enc.num_tokens(100)
    gen = torch.Generator().manual_seed(3)
    keep = torch.stack([torch.randperm(n, generator=gen)[:9] for _ in range(2)])
    out = enc(feats, keep_idx=keep)
    expected = manual_subset(enc, feats, keep)
    assert len(out.layers) == len(expected)
    for got, want in zip(out.layers, expected, strict=True):
        assert got.shape == (2, 9, 32)
        assert torch.allclose(got, want, atol=1e-5)
    assert torch.equal(out.token_index, keep)
    assert torch.equal(out.time_index, keep // 2) and torch.equal(out.freq_index, keep % 2)
    times = FIRST_CENTRE_S + HOP_S * ((keep // 2) * 8 + 3.5)
    assert torch.allclose(out.token_times_s, times.float())


def test_dropped_patches_do_not_affect_kept_outputs():
    enc = tiny()
    feats = features([96])
    keep = torch.tensor([[0, 3, 5, 10]])  # grid (2, 6): tokens (t, f) = (0,0) (1,1) (2,1) (5,0)
    base = enc(feats, keep_idx=keep)
    changed = feats.values.clone()
    changed[:, :16, 16:32] += 5.0  # token 2 = (t=1, f=0): dropped
    changed[:, 16:, 0:16] -= 3.0  # token 1 = (t=0, f=1): dropped
    out = enc(Features(changed, feats.lengths, HOP_S, FIRST_CENTRE_S), keep_idx=keep)
    for a, b in zip(base.layers, out.layers, strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    changed[:, 16:, 16:32] += 1.0  # token 3 = (t=1, f=1): kept → outputs must move
    moved = enc(Features(changed, feats.lengths, HOP_S, FIRST_CENTRE_S), keep_idx=keep)
    assert not torch.allclose(base.layers[-1], moved.layers[-1], atol=1e-3)


def test_embed_then_forward_tokens_supports_mask_embedding_objectives():
    enc = tiny()
    feats = features([64, 40])
    tokens, pad, grid = enc.embed_tokens(feats, add_positions=False)
    assert grid == (2, 4) and tokens.shape == (2, 8, 32)
    positions = enc.position_embedding(grid)
    direct = enc(feats)
    again = enc.forward_tokens(tokens + positions, pad, feats)
    assert torch.allclose(direct.last, again.last, atol=1e-6)
    masked = torch.zeros(2, 8, dtype=torch.bool)
    masked[:, 2] = True
    mask_embedding = torch.full((32,), 0.5)
    swapped = torch.where(masked[..., None], mask_embedding, tokens) + positions
    out = enc.forward_tokens(swapped, pad, feats)
    assert not torch.allclose(out.last, direct.last, atol=1e-4)


@pytest.mark.parametrize("keep", [False, True])
def test_gradients_reach_every_parameter(keep):
    enc = tiny(layer_scale=0.5).train()
    feats = features([64, 30])
    keep_idx = torch.tensor([[0, 2, 5], [1, 2, 3]]) if keep else None
    out = enc(feats, keep_idx=keep_idx)
    assert out.cls_layers is not None
    loss = sum(layer.square().mean() for layer in out.layers + out.cls_layers)
    loss.backward()
    for name, param in enc.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_cls_token_off():
    with_cls, without = tiny(), tiny(cls_token=False)
    out = without(features([64]))
    assert out.cls_layers is None
    assert out.layers[-1].shape == (1, 8, 32)
    n_with = sum(p.numel() for p in with_cls.parameters())
    n_without = sum(p.numel() for p in without.parameters())
    assert n_with - n_without == 32


def test_fully_padded_item_stays_finite():
    enc = tiny()
    out = enc(features([64, 0], n_frames=64))
    assert out.padding_mask[1].all()
    assert torch.isfinite(out.layers[-1]).all()


def test_fused_inference_path_matches_autograd_path():
    enc = build_encoder("vit_test").eval()
    feats = features([200, 120], n_bins=128)
    with torch.no_grad():
        assert use_fused(feats.values, enc.blocks[0].mlp.fc1.weight, None)
        fast = enc(feats)
    assert not use_fused(feats.values, enc.blocks[0].mlp.fc1.weight, None)  # needs grad here
    slow = enc(feats)
    for a, b in zip(fast.layers, slow.layers, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_drop_path_is_random_in_training_only():
    enc = tiny(drop_path=0.5)
    feats = features([64] * 4)
    assert torch.equal(enc(feats).last, enc(feats).last)
    enc.train()
    torch.manual_seed(1)
    a = enc(feats).last
    b = enc(feats).last
    assert not torch.allclose(a, b)
