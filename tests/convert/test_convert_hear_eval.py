"""Every converted family serves the HEAR 2021 API, and one converted model runs `echoic eval
--protocol linear` on a real task (random weights: the check is that it runs end to end)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from convert_helpers import HF_CASES

import echoic.hear as hear

REPO = Path(__file__).resolve().parents[2]
TASK = "body_percussion"


@pytest.fixture(scope="module", params=sorted(HF_CASES))
def hear_model(request, converted):
    return hear.load_model(str(converted(request.param)))


def test_hear_model_attributes(hear_model):
    assert hear_model.sample_rate == 16000
    assert hear_model.scene_embedding_size == hear_model.timestamp_embedding_size == 64


@pytest.mark.parametrize("seconds", [0.05, 1.0, 4.2])
def test_hear_timestamp_embeddings(hear_model, seconds):
    n = int(seconds * 16000)
    audio = torch.rand(3, n, generator=torch.Generator().manual_seed(0)) * 2 - 1
    emb, ts = hear.get_timestamp_embeddings(audio, hear_model)
    assert emb.dtype == ts.dtype == torch.float32
    assert emb.shape[0] == 3 and emb.shape[2] == hear_model.timestamp_embedding_size
    assert ts.shape == emb.shape[:2] and torch.isfinite(emb).all()
    assert torch.all(ts[:, -1] <= 1000 * seconds + 1e-3)
    if ts.shape[1] > 1:
        hops = ts[:, 1:] - ts[:, :-1]
        assert float(hops.max() - hops.min()) < 1.0 and float(hops.max()) <= 50.0


def test_hear_scene_embeddings_do_not_depend_on_the_batch(hear_model):
    audio = torch.rand(4, 16000, generator=torch.Generator().manual_seed(1)) * 2 - 1
    emb = hear.get_scene_embeddings(audio, hear_model)
    assert emb.shape == (4, hear_model.scene_embedding_size) and emb.dtype == torch.float32
    alone = hear.get_scene_embeddings(audio[2:3], hear_model)
    torch.testing.assert_close(emb[2:3], alone, atol=1e-5, rtol=0)


def test_hear_loads_a_transformers_folder_directly(hf_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("ECHOIC_CACHE", str(tmp_path / "cache"))
    folder, _ = hf_folder("wavlm")
    model = hear.load_model(str(folder))
    assert hear.get_scene_embeddings(torch.zeros(1, 8000), model).shape == (1, 64)


@pytest.fixture(scope="module")
def real_task(shared_data, tmp_path_factory) -> Path:
    """body_percussion (202 real clips), the built copy under tasks/ when there, else built."""
    built = REPO / "tasks" / f"{TASK}-v1.0.0-full"
    if (built / "task_metadata.json").is_file():
        return built
    from echoic.cli.main import main

    out = tmp_path_factory.mktemp("tasks")
    args = ["tasks", "build", "--out", str(out), "--tasks", TASK, "--data", str(shared_data)]
    assert main([*args, "--quiet"]) == 0
    return out / f"{TASK}-v1.0.0-full"


def test_echoic_eval_linear_on_a_real_task(converted, real_task, tmp_path, capsys):
    from echoic.cli.main import main

    model_dir = converted("wavlm")
    out = tmp_path / "results"
    args = ["eval", "--protocol", "linear", "--model", str(model_dir), "--tasks", str(real_task)]
    assert main([*args, "--out", str(out), "--no-report", "--quiet"]) == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {row["task"] for row in rows} == {TASK}, rows
    top1 = next(row for row in rows if row["metric"] == "top1_acc")
    assert 0.0 <= float(top1["mean"]) <= 1.0 and int(top1["n"]) == 4
    assert "top1_acc" in capsys.readouterr().out
