"""Fixtures of the fault tests: a tiny saved model, audio with one bad file, and the outputs of
undisturbed runs (an embedding file, a pretraining run) that every disturbed run must match."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from echoic.data.testing import make_good_files

FILES = 16  # good clips to embed: 8 part files of 2 under the slowed driver
STEPS, EVERY = 8, 2  # pretraining steps, checkpoint every EVERY steps


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_factory) -> Path:
    from echoic.checkpoint import save

    path = tmp_path_factory.mktemp("model")
    save(tiny_model_factory(), path)
    return path


@pytest.fixture(scope="session")
def audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("audio")
    make_good_files(root, FILES, seconds=0.5)
    (root / "zz_broken.wav").write_bytes(b"RIFF\x00\x00")  # reported, never fatal
    return root


@pytest.fixture(scope="session")
def reference(audio: Path, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rows of an undisturbed run."""
    from echoic.embed.extract import extract
    from echoic.zoo.registry import resolve_model

    out = tmp_path_factory.mktemp("reference") / "emb.parquet"
    report = extract([audio], out, resolve_model(str(model_dir)), progress=False)
    assert report.written == FILES and len(report.errors) == 1
    return out


@pytest.fixture(scope="session")
def train_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train_audio")
    rng = np.random.default_rng(0)
    for i in range(6):
        samples = 9000 + 1500 * i
        sf.write(root / f"c{i}.wav", (0.1 * rng.standard_normal(samples)).astype(np.float32), 16000)
    return root


@pytest.fixture(scope="session")
def reference_run(train_audio: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An undisturbed pretraining run of STEPS steps (its train_log.jsonl has every loss)."""
    from fault_helpers import tiny_recipe

    from echoic.train.config import load_config
    from echoic.train.run import pretrain

    root = tmp_path_factory.mktemp("reference_run")
    out = root / "run"
    recipe = tiny_recipe(root / "recipe.yaml", train_audio, out, STEPS, EVERY)
    pretrain(load_config(recipe), export=False)
    return out
