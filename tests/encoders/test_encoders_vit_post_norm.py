"""``ViTConfig.post_norm`` (data2vec 2.0 / EAT): post-LN blocks, ``norm`` before the first block
(summary tokens included) and none after the last. Off by default: every other size unchanged."""

from __future__ import annotations

import pytest
import torch

from echoic.encoders import build_encoder
from echoic.encoders.vit import ViTConfig
from echoic.errors import ConfigError
from echoic.layers import Block, PostNormBlock, padding_to_attn_mask
from echoic.types import Features


def test_post_norm_layers_are_the_post_ln_stack():
    torch.manual_seed(0)
    enc = build_encoder("eat_test").eval()
    assert all(isinstance(b, PostNormBlock) for b in enc.blocks)
    values = torch.randn(2, 128, 40)
    feats = Features(values, torch.tensor([40, 25]), 0.01, 0.0125)
    tokens, pad, _ = enc.embed_tokens(feats)
    with torch.no_grad():
        out = enc(feats)
        x = enc.norm(torch.cat([enc.cls_token.expand(2, -1, -1), tokens], dim=1))
        attn = padding_to_attn_mask(torch.cat([pad.new_zeros(2, 1), pad], dim=1))
        hidden = [x]
        for block in enc.blocks:
            hidden.append(block(hidden[-1], attn))
    assert out.cls_layers is not None
    for ours, expected in zip(out.layers, hidden, strict=True):
        valid = ~pad
        torch.testing.assert_close(ours[valid], expected[:, 1:][valid], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.cls_layers[-1], hidden[-1][:, 0], atol=1e-5, rtol=0)


def test_default_is_pre_ln_and_layer_scale_is_refused_with_post_norm():
    assert all(isinstance(b, Block) for b in build_encoder("vit_test").blocks)
    assert ViTConfig(dim=32, depth=1, heads=2).post_norm is False
    with pytest.raises(ConfigError, match="layer_scale"):
        ViTConfig(dim=32, depth=1, heads=2, post_norm=True, layer_scale=0.1)


@pytest.mark.parametrize("family", ["eat_test", "audiomae_test", "m2d_test"])
def test_every_objective_trains_the_mae_family_layouts(family):
    """A converted EAT (post-LN), AudioMAE or M2D trains further like an echoic ViT, by every
    objective that accepts its spec; the spectrogram-patch methods all do (the 1-D frame methods,
    e.g. data2vec2 / wavjepa / hubert, refuse 2-D patches up front)."""
    from echoic.objectives import OBJECTIVES, build_objective
    from echoic.types import TrainBatch

    refused: dict[str, str] = {}
    for name in OBJECTIVES.names():
        torch.manual_seed(0)
        encoder = build_encoder(family)
        try:
            OBJECTIVES.get(name).check_encoder(encoder.spec)
        except ConfigError as err:
            refused[name] = str(err)
            continue
        # audio–text objectives: the tiny text tower and one caption per clip
        text_config = {"text": "text_test"} if OBJECTIVES.get(name).needs_text else None
        objective = build_objective(name, encoder, text_config).train()
        values = torch.randn(
            2, encoder.spec.n_bins, 128, generator=torch.Generator().manual_seed(0)
        )
        text = objective.caption_tokenizer()(["a dog", "rain"]) if objective.needs_text else None
        batch = TrainBatch.of(Features(values, torch.tensor([128, 100]), 0.01, 0.0125), text=text)
        objective(batch, torch.Generator().manual_seed(0)).loss.backward()
        assert all(p.grad is not None for p in encoder.parameters()), (family, name)
    assert not {"mae", "ssast", "eat", "m2d", "asit"} & refused.keys(), refused
