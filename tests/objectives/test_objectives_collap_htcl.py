"""collap and htcl: the chunk fusion weights, the co-occurrence positives, stage 2's start from
stage 1, and 30 optimiser steps of each test recipe's objective lowering its loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from echoic.encoders import build_encoder
from echoic.errors import ConfigError
from echoic.objectives import build_objective
from echoic.objectives.collap import ChunkFusion, CollapObjective, split_chunks
from echoic.objectives.htcl import cooccurrence_mask, supcon
from echoic.train.paired import ClipCaptions, cooccurrence_ids
from echoic.types import Features, TrainBatch

ROOT = Path(__file__).resolve().parents[2]
CAPTIONS = ["a dog barking", "rain on a tin roof", "a violin", "a door slams"]


def feats(n: int = 4, frames: int = 200, seed: int = 0) -> Features:
    g = torch.Generator().manual_seed(seed)
    return Features(torch.randn(n, 128, frames, generator=g), torch.full((n,), frames), 0.01, 0.0)


def test_split_chunks_cuts_time_and_marks_padding() -> None:
    f = Features(torch.arange(2 * 3 * 10.0).reshape(2, 3, 10), torch.tensor([10, 4]), 0.1, 0.0)
    flat, valid = split_chunks(f, 0.3)  # 3 frames a chunk: 3 chunks, 1 frame dropped
    assert flat.values.shape == (6, 3, 3)
    assert torch.equal(flat.values[4], f.values[1, :, 3:6])
    assert flat.lengths.tolist() == [3, 3, 3, 3, 1, 1]  # clip 1 has 4 valid frames
    assert valid.tolist() == [[True, True, True], [True, True, False]]


def test_fusion_weights_sum_to_one_over_valid_chunks_and_depend_on_the_text() -> None:
    torch.manual_seed(0)
    fusion = ChunkFusion(dim=8, attention_dim=4)
    chunks, text = torch.randn(3, 5, 8), torch.randn(2, 8)
    valid = torch.ones(3, 5, dtype=torch.bool)
    valid[1, 3:] = False
    w = fusion.weights(chunks, valid, text)
    assert w.shape == (3, 2, 5)
    assert torch.allclose(w.sum(-1), torch.ones(3, 2), atol=1e-6)
    assert float(w[1, :, 3:].detach().abs().max()) == 0.0  # padding chunks get no weight
    assert not torch.allclose(w[:, 0], w[:, 1], atol=1e-3)  # another caption, other weights
    glob = torch.randn(3, 8)
    fused, _ = fusion.fused(chunks, valid, glob, text)
    expected = glob[0] + (w[0, 1, :, None] * chunks[0]).sum(0)
    assert torch.allclose(fused[0, 1], expected / expected.norm(), atol=1e-5)


def test_collap_uses_k_chunks_and_its_loss_has_gradients_in_the_fusion() -> None:
    torch.manual_seed(0)
    obj = build_objective(
        "collap", build_encoder("vit_test"), {"text": "text_test", "chunk_s": 0.5}
    )
    assert isinstance(obj, CollapObjective)
    batch = TrainBatch.of(feats(), text=obj.caption_tokenizer()(CAPTIONS))
    out = obj.train()(batch, torch.Generator().manual_seed(0))
    assert out.logs["chunks"] == 4.0  # 2 s of 10-ms frames in 0.5-s chunks
    out.loss.backward()
    assert obj.fusion.query.weight.grad is not None
    assert float(obj.fusion.query.weight.grad.abs().sum()) > 0


def test_cooccurrence_mask_and_ids_by_hand() -> None:
    captions = [
        ClipCaptions(["frog"], "stamp/frog", "tux"),
        ClipCaptions(["a frog croaks"], "stamp/frog", "tux"),
        ClipCaptions(["rain"], "pack/rain", "sfx"),
        ClipCaptions(["owl"], "stamp/owl", "tux"),
    ]
    ids = cooccurrence_ids(captions)  # sorted keys: pack/rain 0, stamp/frog 1, stamp/owl 2
    assert ids == [(1, 1), (1, 1), (0, 0), (2, 1)]
    group = torch.tensor([g for g, _ in ids])
    assert cooccurrence_mask(group).tolist() == [
        [False, True, False, False],
        [True, False, False, False],
        [False, False, False, False],
        [False, False, False, False],
    ]
    source = torch.tensor([s for _, s in ids])
    assert cooccurrence_mask(source).tolist() == [
        [False, True, False, True],
        [True, False, False, True],
        [False, False, False, False],
        [True, True, False, False],
    ]


def test_supcon_by_hand_and_zero_without_positives() -> None:
    v = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]]), dim=-1)
    pos = cooccurrence_mask(torch.tensor([0, 0, 1]))
    loss, anchors = supcon(v, pos, 0.5)
    s = v @ v.t() / 0.5
    l0 = -(s[0, 1] - torch.logsumexp(s[0, [1, 2]], 0))
    l1 = -(s[1, 0] - torch.logsumexp(s[1, [0, 2]], 0))
    assert anchors == 2 and torch.allclose(loss, (l0 + l1) / 2)
    zero, none = supcon(v, cooccurrence_mask(torch.tensor([0, 1, 2])), 0.5)
    assert none == 0 and float(zero) == 0.0


def test_htcl_stage2_needs_init_and_starts_from_the_stage1_export(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="init"):
        build_objective("htcl", build_encoder("vit_test"), {"text": "text_test", "stage": 2})
    with pytest.raises(ConfigError, match="expected a model exported"):
        build_objective(
            "htcl",
            build_encoder("vit_test"),
            {"text": "text_test", "stage": 2, "init": str(tmp_path)},
        )


def recipe_objective(name: str) -> tuple[torch.nn.Module, dict[str, object]]:
    recipe = yaml.safe_load((ROOT / "configs/pretrain" / f"{name}_test.yaml").read_text())
    torch.manual_seed(0)
    encoder = build_encoder(recipe["model"]["encoder"])
    return build_objective(
        recipe["objective"]["name"], encoder, recipe["objective"]["config"]
    ), recipe


@pytest.mark.parametrize("name", ["collap", "htcl"])
def test_thirty_steps_of_the_test_recipe_lower_the_loss(name: str) -> None:
    obj, recipe = recipe_objective(name)
    frames = int(recipe["data"]["crop_s"] * 100)
    f = feats(4, frames)
    batch = TrainBatch.of(
        f,
        text=obj.caption_tokenizer()(CAPTIONS),
    )
    batch.groups = torch.tensor([[0, 0], [0, 0], [1, 0], [2, 0]])
    optim = torch.optim.AdamW(obj.parameters(), lr=recipe["optim"]["lr"])
    losses = []
    obj.train()
    for step in range(30):
        out = obj(batch, torch.Generator().manual_seed(step))
        optim.zero_grad()
        out.loss.backward()
        optim.step()
        obj.after_optimizer_step()
        losses.append(float(out.loss))
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5, losses
