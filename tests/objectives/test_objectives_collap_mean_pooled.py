"""collap with ``fusion: false``: clap's InfoNCE on the mean-pooled chunk embedding alone (the
baseline CoLLAP compares against), and an export without a fusion file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from echoic.encoders import build_encoder
from echoic.errors import ConfigError
from echoic.objectives import build_objective
from echoic.objectives.audio_text import symmetric_cross_entropy
from echoic.objectives.clap import same_caption
from echoic.objectives.collap import FUSION_FILE, CollapObjective, load_fusion
from echoic.types import Features, TrainBatch

CAPTIONS = ["a dog barking", "rain on a tin roof", "a violin", "a door slams"]


def test_collap_without_fusion_is_clap_on_the_mean_of_its_chunks(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = {
        "text": "text_test",
        "chunk_s": 0.5,
        "fusion": False,
        "time_masks": 0,
        "freq_masks": 0,
    }
    obj = build_objective("collap", build_encoder("vit_test"), config)
    assert isinstance(obj, CollapObjective) and obj.fusion is None
    g = torch.Generator().manual_seed(0)
    feats = Features(torch.randn(4, 128, 200, generator=g), torch.full((4,), 200), 0.01, 0.0)
    tokens = obj.caption_tokenizer()(CAPTIONS)
    batch = TrainBatch.of(feats, text=tokens)
    out = obj.eval()(batch, torch.Generator().manual_seed(0))
    assert "attention_entropy" not in out.logs and out.logs["chunks"] == 4.0
    with torch.no_grad():
        _, _, glob = obj.chunk_embeddings(feats)
        text = torch.nn.functional.normalize(obj.text_head(obj.text_tower(tokens)), dim=-1)
        expected = symmetric_cross_entropy(
            obj.scale() * glob @ text.t(), same_caption(tokens.input_ids, tokens.padding_mask)
        )
    assert torch.allclose(out.loss, expected, atol=1e-5)
    names = obj.save_beside_model(tmp_path)
    assert FUSION_FILE not in names and not (tmp_path / FUSION_FILE).exists()
    assert "fusion" not in json.loads((tmp_path / "joint.json").read_text())
    with pytest.raises(ConfigError, match="fusion: true"):
        load_fusion(tmp_path)


@pytest.mark.parametrize("fusion", [True, False])
def test_collap_batch_norm_heads_see_one_batch_and_export_their_norm(
    tmp_path: Path, fusion: bool
) -> None:
    torch.manual_seed(0)
    config = {"text": "text_test", "chunk_s": 0.5, "fusion": fusion, "head_norm": "batch"}
    obj = build_objective("collap", build_encoder("vit_test"), config)
    g = torch.Generator().manual_seed(0)
    feats = Features(torch.randn(4, 128, 200, generator=g), torch.full((4,), 200), 0.01, 0.0)
    batch = TrainBatch.of(feats, text=obj.caption_tokenizer()(CAPTIONS))
    out = obj.train()(batch, torch.Generator().manual_seed(0))
    out.loss.backward()
    assert torch.isfinite(out.loss)
    # one head call per step: chunks and clip means (fusion) or the clip means alone
    assert int(obj.audio_head[1].num_batches_tracked) == 1
    obj.save_beside_model(tmp_path)
    spec = json.loads((tmp_path / "joint.json").read_text())["audio_head"]
    assert spec == [{"dims": [32, 512, 512], "norm": "batch", "activation": "relu"}]
    with pytest.raises(ConfigError, match="head_norm"):
        build_objective("clap", build_encoder("vit_test"), {"text": "text_test", "head_norm": "x"})
