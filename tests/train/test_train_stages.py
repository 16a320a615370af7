"""Iteration recipes (``stages:``): a BEATs iteration end to end on vit_test, skipping finished
stages, exact resumption of a stage stopped mid-iteration, and the checks on stage settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch.callbacks import Callback

import echoic
from echoic.cli.main import main
from echoic.errors import ConfigError
from echoic.tokenizers import load_tokenizer
from echoic.train.config import load_config
from echoic.train.run import pretrain
from echoic.train.stages import run_stages

RECIPES = Path(__file__).resolve().parents[2] / "configs" / "pretrain"
BEATS_ITER = RECIPES / "beats_iter_test.yaml"
FAST = ["--data.max_files=24", "--trainer.max_steps=4", "--trainer.checkpoint_every_n_steps=2"]


def losses(run: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows}  # a redone step: the last row counts


class StopInStage(Callback):
    """Simulates a kill right after optimiser step ``step`` of the stage in folder ``stage``."""

    def __init__(self, stage: str, step: int) -> None:
        self.stage, self.step = stage, step

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        if Path(trainer.default_root_dir).name == self.stage and trainer.global_step >= self.step:
            trainer.should_stop = True


def test_beats_iteration_runs_end_to_end_and_skips_finished_stages(
    shared_data: Path, tmp_path: Path
) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "beats_iter"
    args = ["pretrain", "--config", str(BEATS_ITER), f"--output_dir={out}"]
    assert main(args) == 0
    for stage in ("iter0", "tokenizer1", "iter1"):
        assert json.loads((out / stage / "stage.json").read_text())["finished"]
    tokenizer = load_tokenizer(out / "tokenizer1")
    assert tokenizer.name == "beats_acoustic" and tokenizer.source["target_frames"] == "patches"
    assert tokenizer.source["model"] == str(out / "iter0" / "model")  # the iter-0 encoder taught it
    iter1 = load_config(out / "iter1" / "config.yaml")
    assert iter1.objective.config["tokenizer"] == str(out / "tokenizer1")
    assert load_config(out / "iter0" / "config.yaml").objective.config["tokenizer"] is None
    model = echoic.load(out / "iter1" / "model")
    assert model.config.objective == "beats" and model.config.step == 6
    curve = losses(out / "iter1")
    assert sorted(curve) == list(range(1, 7)) and curve[6] < curve[1]

    # again: every stage is skipped (nothing retrains, the logs are untouched)
    before = {s: (out / s / "train_log.jsonl").read_text() for s in ("iter0", "iter1")}
    result = run_stages(load_config(BEATS_ITER, [f"--output_dir={out}"]))
    assert result.finished and result.last is None
    assert result.model_dir == out / "iter1" / "model"
    assert {s: (out / s / "train_log.jsonl").read_text() for s in before} == before

    # a finished stage whose settings changed is refused, not silently reused
    with pytest.raises(ConfigError, match="finished earlier"):
        run_stages(load_config(BEATS_ITER, [f"--output_dir={out}", "--optim.lr=5e-4"]))


def test_a_stop_mid_iteration_resumes_exactly(shared_data: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    run_stages(load_config(BEATS_ITER, [f"--output_dir={straight}", *FAST]))

    config = load_config(BEATS_ITER, [f"--output_dir={stopped}", *FAST])
    first = run_stages(config, callbacks=[StopInStage("iter1", 3)])  # 3: after the step-2 ckpt
    assert not first.finished and first.last is not None
    assert not (stopped / "iter1" / "stage.json").exists()
    assert sorted(losses(stopped / "iter1")) == [1, 2, 3]
    tokenizer_record = (stopped / "tokenizer1" / "stage.json").read_text()

    second = run_stages(config)  # the same command again: iter0 / tokenizer1 skipped
    assert second.finished
    assert (stopped / "tokenizer1" / "stage.json").read_text() == tokenizer_record
    for stage in ("iter0", "iter1"):
        expected, resumed = losses(straight / stage), losses(stopped / stage)
        assert sorted(resumed) == sorted(expected) == [1, 2, 3, 4]
        diffs = [abs(resumed[s] - expected[s]) for s in expected]
        assert max(diffs) <= 1e-6, (stage, diffs)
    a, b = echoic.load(straight / "iter1" / "model"), echoic.load(stopped / "iter1" / "model")
    for key, value in a.state_dict().items():
        assert torch.allclose(value, b.state_dict()[key], atol=1e-6), key


def test_stage_settings_are_checked(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    base = BEATS_ITER.read_text().split("stages:")[0]
    recipe.write_text(base + "stages:\n  - {name: a, pretrain: {}}\n  - {name: a, pretrain: {}}\n")
    with pytest.raises(ConfigError, match="unique"):
        run_stages(load_config(recipe, [f"--output_dir={tmp_path / 'o'}"]))
    recipe.write_text(
        base + "stages:\n  - name: a\n    pretrain: {objective: {config: {tokenizer: stage:b}}}\n"
        "  - {name: b, tokenizer: {name: kmeans, input: mfcc}}\n"
    )
    with pytest.raises(ConfigError, match="no earlier stage is named 'b'"):
        run_stages(load_config(recipe, [f"--output_dir={tmp_path / 'o'}"]))
    recipe.write_text(base + "stages:\n  - {name: a}\n")
    with pytest.raises(ConfigError, match="exactly one of"):
        run_stages(load_config(recipe))
    with pytest.raises(ConfigError, match="has stages"):
        pretrain(load_config(BEATS_ITER))


def test_hubert_iterations_label_iteration_two_with_the_iteration_one_model(
    shared_data: Path, tmp_path: Path
) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "hubert_iter"
    recipe = RECIPES / "hubert_iter_test.yaml"
    result = run_stages(load_config(recipe, [f"--output_dir={out}", "--trainer.max_steps=2"]))
    assert result.finished and result.model_dir == out / "iter2" / "model"
    mfcc, layer = load_tokenizer(out / "kmeans_mfcc"), load_tokenizer(out / "kmeans_layer")
    assert mfcc.source["target_frames"] == "mfcc" and mfcc.input_dim == 39
    assert layer.source["target_frames"] == "layer" and layer.source["layer"] == 1
    assert layer.source["model"] == str(out / "iter1" / "model")
    iter2 = load_config(out / "iter2" / "config.yaml").objective.config
    assert iter2["teacher"] == str(out / "iter1" / "model")
    assert iter2["tokenizer"] == str(out / "kmeans_layer") and iter2["target_frames"] == "layer"
    assert sorted(losses(out / "iter2")) == [1, 2]
