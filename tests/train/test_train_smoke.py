"""The smoke recipes through the CLI on real audio: all 50 steps (≈ 5 s each on one CPU thread),
the loss goes down, the export loads and embeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import echoic
from echoic.cli.main import main
from echoic.data import pad_batch
from echoic.objectives import OBJECTIVES
from echoic.train.config import load_config

RECIPES = Path(__file__).resolve().parents[2] / "configs" / "pretrain"
STEPS = 50


def run_cli(*args: str) -> int:
    return main(["pretrain", *args])


def losses(out: Path) -> list[float]:
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    return [r["loss"] for r in sorted(rows, key=lambda r: r["step"])]


RECIPE_NAMES = [
    "mae_test",
    "eat_test",
    "ssast_test",
    "ssast_ssamba_test",
    "mae_wav_test",
    "eat_wav_test",
    "m2d_test",
    "byol_a_test",
    "tera_test",
    "data2vec2_test",
    "wavjepa_test",
    "asit_test",
    "beats_test",
    "hubert_test",
    "spear_test",
    "unfused_test",
]


@pytest.mark.parametrize("recipe", RECIPE_NAMES)
def test_smoke_recipe_trains_and_exports(recipe: str, shared_data: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    method = load_config(RECIPES / f"{recipe}.yaml").objective.name
    out = tmp_path / recipe
    code = run_cli(
        "--config", str(RECIPES / f"{recipe}.yaml"),
        f"--output_dir={out}",
        "--data.num_workers=0",
        "--trainer.progress_bar=false",
    )  # fmt: skip
    assert code == 0
    curve = losses(out)
    assert len(curve) == STEPS and all(np.isfinite(curve))
    head, tail = np.mean(curve[:5]), np.mean(curve[-5:])
    assert tail < head, f"{method}: loss did not go down: {curve}"

    model = echoic.load(out / "model")
    assert model.config.objective == method and model.config.step == STEPS
    assert model.config.data_hash and not model.config.untrained
    # the method's recommended embedding recipe travels with the export (M2D: freq_pool concat)
    assert OBJECTIVES.get(method).embed_defaults.items() <= model.config.embed.items()
    clip = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    with torch.no_grad():
        encoded = model(pad_batch([clip], model.sample_rate))
    assert encoded.last.shape[-1] == model.encoder.spec.width
    assert torch.isfinite(encoded.last).all()
    assert (out / "config.yaml").is_file() and (out / "checkpoints" / "last.ckpt").is_file()


def test_cli_resume_auto_and_export_from(shared_data: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "run"
    common = [
        "--config", str(RECIPES / "mae_test.yaml"), f"--output_dir={out}",
        "--data.num_workers=0", "--trainer.progress_bar=false", "--trainer.tensorboard=false",
    ]  # fmt: skip
    assert run_cli(*common, "--trainer.max_steps=3") == 0
    assert run_cli(*common, "--trainer.max_steps=5", "--resume") == 0  # bare --resume = auto
    rows = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]
    assert echoic.load(out / "model").config.step == 5
    again = tmp_path / "again"
    assert run_cli(*common, "--export-from", str(out / "checkpoints" / "last.ckpt"),
                   f"--export_dir={again}") == 0  # fmt: skip
    a, b = echoic.load(out / "model"), echoic.load(again)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key])


def test_cli_reports_unknown_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("--config", str(RECIPES / "eat_test.yaml"), "--optim.lrr", "1") == 1
    assert "Did you mean 'lr'" in capsys.readouterr().err
    assert run_cli("--config", str(RECIPES / "eat_test.yaml"), "--print-config") == 0
    assert "clone_batch: 4" in capsys.readouterr().out
