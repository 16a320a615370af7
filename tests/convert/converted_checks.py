"""Checks every converted family passes: the HEAR 2021 API, and one `echoic eval --protocol linear`
on a real task (random weights: the check is that it runs end to end)."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

import echoic.hear as hear

REPO = Path(__file__).resolve().parents[2]
TASK = "body_percussion"


def task_dir(shared_data: Path, scratch: Path) -> Path:
    """body_percussion (202 real clips): the built copy under tasks/ when there, else built."""
    built = REPO / "tasks" / f"{TASK}-v1.0.0-full"
    if (built / "task_metadata.json").is_file():
        return built
    from echoic.cli.main import main

    args = ["tasks", "build", "--out", str(scratch), "--tasks", TASK, "--data", str(shared_data)]
    assert main([*args, "--quiet"]) == 0
    return scratch / f"{TASK}-v1.0.0-full"


def check_hear(
    model_dir: Path,
    width: int,
    seconds: tuple[float, ...] = (0.3, 1.0, 4.2),
    sample_rate: int = 16000,
) -> None:
    """The HEAR module on a converted model: sizes, timestamps, batch-invariant scenes."""
    model = hear.load_model(str(model_dir))
    assert model.sample_rate == sample_rate
    assert model.scene_embedding_size >= width and model.timestamp_embedding_size >= width
    for length in seconds:
        n = int(length * sample_rate)
        audio = torch.rand(2, n, generator=torch.Generator().manual_seed(0)) * 2 - 1
        emb, ts = hear.get_timestamp_embeddings(audio, model)
        assert emb.dtype == ts.dtype == torch.float32 and torch.isfinite(emb).all()
        assert emb.shape[0] == 2 and emb.shape[2] == model.timestamp_embedding_size
        assert ts.shape == emb.shape[:2] and torch.all(ts[:, -1] <= 1000 * length + 1e-3)
        if ts.shape[1] > 1:
            hops = ts[:, 1:] - ts[:, :-1]
            assert float(hops.max() - hops.min()) < 1.0 and float(hops.max()) <= 50.0
    audio = torch.rand(3, sample_rate, generator=torch.Generator().manual_seed(1)) * 2 - 1
    scenes = hear.get_scene_embeddings(audio, model)
    assert scenes.shape == (3, model.scene_embedding_size)
    alone = hear.get_scene_embeddings(audio[1:2], model)
    torch.testing.assert_close(scenes[1:2], alone, atol=1e-5, rtol=0)


def linear_smoke(model_dir: Path, task: Path, out: Path) -> float:
    """`echoic eval --protocol linear` on ``task``; returns the mean top-1 accuracy."""
    from echoic.cli.main import main

    args = ["eval", "--protocol", "linear", "--model", str(model_dir), "--tasks", str(task)]
    assert main([*args, "--out", str(out), "--no-report", "--quiet"]) == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {row["task"] for row in rows} == {TASK}, rows
    top1 = next(row for row in rows if row["metric"] == "top1_acc")
    assert 0.0 <= float(top1["mean"]) <= 1.0 and int(top1["n"]) == 4
    return float(top1["mean"])
