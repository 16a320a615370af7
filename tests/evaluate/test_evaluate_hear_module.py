"""Any HEAR 2021 API module as a model: a small module written in the test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from echoic.errors import EchoicError
from echoic.evaluate.cache import embed_task
from echoic.evaluate.hear_module import HearModuleModel
from echoic.evaluate.task import load_task

MODULE = """
import torch

class Model(torch.nn.Module):
    sample_rate = 16000
    scene_embedding_size = 4
    timestamp_embedding_size = 4

    def __init__(self, scale):
        super().__init__()
        self.scale = scale

def load_model(model_file_path="", **kw):
    scale = float(open(model_file_path).read()) if model_file_path else 1.0
    return Model(scale)

def get_timestamp_embeddings(audio, model):
    n, s = audio.shape
    hop = 1600
    t = s // hop
    frames = audio[:, : t * hop].reshape(n, t, hop)
    emb = torch.stack([frames.abs().mean(-1), frames.std(-1), frames.max(-1).values,
                       frames.min(-1).values], -1) * model.scale
    ts = (torch.arange(t) * 100.0 + 50.0).expand(n, t)
    return emb, ts

def get_scene_embeddings(audio, model):
    emb, _ = get_timestamp_embeddings(audio, model)
    return emb.mean(1)
"""


@pytest.fixture
def hear_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "toy_hear_module.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    weights = tmp_path / "weights.txt"
    weights.write_text("2.0")
    return weights


def test_hear_module_embeds_scene_and_event_tasks(
    hear_module: Path, scene_task: Path, event_task: Path, tmp_path: Path
) -> None:
    model = HearModuleModel("toy_hear_module", str(hear_module))
    assert model.sample_rate == 16000 and model.embedding_size == 4
    scene = embed_task(model, load_task(scene_task), tmp_path / "c", progress=False)
    assert scene.splits["fold00"].x.shape == (12, 4)
    event = embed_task(model, load_task(event_task), tmp_path / "c", progress=False)
    split = event.splits["fold00"]
    assert np.all(np.diff(split.offsets) == 20)  # 2-s clips, 100-ms frames
    np.testing.assert_allclose(split.timestamps_ms[:2], [50.0, 150.0])
    one = model.embed([np.ones(3200, np.float32)])[0]
    np.testing.assert_allclose(one.scene.numpy(), [2.0, 0.0, 2.0, 2.0])


def test_identity_follows_the_weights(hear_module: Path) -> None:
    a = HearModuleModel("toy_hear_module", str(hear_module)).identity
    hear_module.write_text("3.0")
    b = HearModuleModel("toy_hear_module", str(hear_module)).identity
    assert a != b and a.startswith("hear-toy_hear_module-")


def test_missing_module_says_how_to_fix() -> None:
    with pytest.raises(EchoicError, match="install the package"):
        HearModuleModel("no_such_hear_module_xyz")


def test_cli_accepts_hear_module(hear_module: Path, scene_task: Path, tmp_path: Path) -> None:
    from echoic.cli.main import main

    out = tmp_path / "out"
    code = main(
        [
            "eval",
            "--hear-module",
            "toy_hear_module",
            "--hear-weights",
            str(hear_module),
            "--tasks",
            str(scene_task),
            "--protocol",
            "knn",
            "--out",
            str(out),
            "--quiet",
            "--no-report",
        ]
    )
    assert code == 0
    [record] = [json.loads(p.read_text()) for p in out.glob("*/*.json")]
    assert record["model"] == "toy_hear_module (weights.txt)"
    assert record["embedding"]["dim"] == 4
