"""The audio–sheet two-tower model: its losses against written-out formulas, and its directory
round trip (the audio tower an ordinary echoic model, the rest restored exactly)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from echoic.errors import CheckpointError, ConfigError
from echoic.objectives.sheet import SheetModel, SheetModelConfig, cross_modal_loss, nt_xent

TINY = SheetModelConfig(
    audio_encoder="vit_test",
    image_encoder="sheet_cnn_test",
    image_encoder_config={"height": 32, "width": 48},
    dim=8,
    hidden=16,
)


def test_nt_xent_is_simclr_loss_written_out() -> None:
    torch.manual_seed(0)
    a, b, t = torch.randn(5, 7), torch.randn(5, 7), 0.3
    z = F.normalize(torch.cat([a, b]), dim=-1)
    losses = []
    for i in range(10):
        positive = (i + 5) % 10
        others = [j for j in range(10) if j != i]
        logits = torch.stack([z[i] @ z[j] / t for j in others])
        losses.append(-(z[i] @ z[positive] / t - torch.logsumexp(logits, 0)))
    assert nt_xent(a, b, t).item() == pytest.approx(torch.stack(losses).mean().item(), rel=1e-5)


def test_cross_modal_loss_is_symmetric_clip_loss() -> None:
    torch.manual_seed(1)
    a, i = F.normalize(torch.randn(6, 4), dim=-1), F.normalize(torch.randn(6, 4), dim=-1)
    scale = torch.tensor(10.0)
    loss, logits = cross_modal_loss(a, i, scale)
    target = torch.arange(6)
    expected = 0.5 * (F.cross_entropy(10 * a @ i.T, target) + F.cross_entropy(10 * i @ a.T, target))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert cross_modal_loss(i, a, scale)[0].item() == pytest.approx(loss.item(), rel=1e-6)
    assert logits.shape == (6, 6)


def test_save_and_load_give_the_same_vectors(tmp_path: Path) -> None:
    import echoic

    torch.manual_seed(2)
    model = SheetModel(TINY).eval()
    with torch.no_grad():
        model.logit_scale.fill_(math.log(20.0))
    waves = (np.random.default_rng(0).normal(size=(3, 16000)) * 3000).astype(np.int16)
    pages = [
        np.random.default_rng(i).integers(0, 256, size=(32, 40), dtype=np.uint8) for i in range(3)
    ]
    model.save(tmp_path / "m", seed=2)
    loaded = SheetModel.load(tmp_path / "m")
    torch.testing.assert_close(loaded.embed_waves(waves), model.embed_waves(waves))
    torch.testing.assert_close(loaded.embed_pages(pages), model.embed_pages(pages))
    assert loaded.scale().item() == pytest.approx(20.0)
    assert echoic.load(tmp_path / "m").encoder.spec.width == 32  # the audio tower alone
    meta = json.loads((tmp_path / "m" / "sheet.json").read_text())
    assert meta["provenance"] == {"seed": 2} and meta["config"]["image_encoder"] == "sheet_cnn_test"
    vectors = model.embed_waves(waves)
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(3))


def test_scale_is_clamped_and_bad_files_are_refused(tmp_path: Path) -> None:
    model = SheetModel(TINY)
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    model.clamp_scale()
    assert model.scale().item() == pytest.approx(100.0)
    with pytest.raises(CheckpointError, match=r"no sheet\.json"):
        SheetModel.load(tmp_path)
    model.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "sheet.json").read_text())
    (tmp_path / "m" / "sheet.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(CheckpointError, match="format_version 99"):
        SheetModel.load(tmp_path / "m")
    with pytest.raises(ConfigError, match="init_temperature"):
        SheetModelConfig(init_temperature=2.0)
