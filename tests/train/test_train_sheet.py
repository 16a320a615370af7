"""Two-tower audio–sheet training on the small ``sheet_snippets`` build (``vit_test`` +
``sheet_cnn_test``): stage B's loss goes down in 20 steps, validation picks the checkpoint, and the
SSL stages read one modality each (shuffling the other changes nothing). Needs the ``sheet``
extra and fluidsynth: skips without them unless ``ECHOIC_REQUIRE_SHEET=1``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from echoic.objectives.sheet import SheetModelConfig
from echoic.tasks.sheet_pairs import SheetPairs, read_sheet_pairs
from echoic.train.sheet import SheetTrainConfig, StageConfig, train_sheet
from echoic.train.sheet_augment import AudioAugmentConfig, ImageAugmentConfig

TINY = SheetModelConfig(audio_encoder="vit_test", image_encoder="sheet_cnn_test", dim=16, hidden=32)


@pytest.fixture(scope="module")
def task_dir(sheet_extra: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from echoic.tasks.writer import build_task, get_builder

    out = tmp_path_factory.mktemp("sheet_train")
    return build_task(get_builder("sheet_snippets"), out, out, 16000, "small", False).directory


@pytest.fixture(scope="module")
def train(task_dir: Path) -> SheetPairs:
    return read_sheet_pairs(task_dir, "train")


def quiet(line: str) -> None:
    pass


def test_twenty_steps_lower_the_pair_loss(train: SheetPairs) -> None:
    config = SheetTrainConfig(
        model=TINY,
        seed=0,
        finetune=StageConfig(max_steps=20, batch_size=6, lr=3e-3, warmup_steps=1),
        pair_audio_views=AudioAugmentConfig(crop_s=None, max_shift_s=0.0, gain_db=0.0, noise_p=0.0),
        pair_image_views=ImageAugmentConfig(
            crop=(1, 1),
            max_translate=(0, 0),
            max_rotate_deg=0,
            scale=(1, 1),
            max_shear_deg=0,
            thicken=0,
            noise_std=0,
        ),
    )
    result = train_sheet(config, train, log=quiet)
    losses = result.stages[0].losses
    assert len(losses) == 20 and all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.05, losses


def test_validation_chooses_and_restores_the_best_checkpoint(train: SheetPairs) -> None:
    scores = iter([0.1, 0.5, 0.2, 0.3])  # steps 0, 5, 10, 15

    seen = []

    def validate(model: object) -> float:
        seen.append({k: v.clone() for k, v in model.state_dict().items()})  # type: ignore[attr-defined]
        return next(scores)

    config = SheetTrainConfig(
        model=TINY, seed=1, finetune=StageConfig(max_steps=15, batch_size=6), eval_every=5
    )
    result = train_sheet(config, train, validate, log=quiet)
    stage = result.stages[-1]
    assert [step for step, _ in stage.validation] == [0, 5, 10, 15]
    assert stage.best_step == 5
    for key, value in result.model.state_dict().items():
        torch.testing.assert_close(value, seen[1][key])


def _shuffled(pairs: SheetPairs, audio: bool) -> SheetPairs:
    order = np.roll(np.arange(len(pairs)), 1)
    if audio:
        return dataclasses.replace(
            pairs, audio=pairs.audio[order], durations_s=pairs.durations_s[order]
        )
    return dataclasses.replace(pairs, images=[pairs.images[i] for i in order])


def test_ssl_stages_never_read_the_pairing(train: SheetPairs) -> None:
    config = SheetTrainConfig(
        model=TINY,
        seed=2,
        ssl_audio=StageConfig(max_steps=3, batch_size=4),
        ssl_image=StageConfig(max_steps=3, batch_size=4),
        finetune=None,
    )
    base = train_sheet(config, train, log=quiet)
    images_moved = train_sheet(config, _shuffled(train, audio=False), log=quiet)
    audio_moved = train_sheet(config, _shuffled(train, audio=True), log=quiet)
    assert [s.name for s in base.stages] == ["ssl_audio", "ssl_image"]
    assert base.stages[0].steps == 3 and np.isfinite(base.stages[1].losses).all()
    # the audio tower only ever saw audio, the image tower only images: pairing them differently
    # leaves each tower exactly as it was
    for key, value in base.model.audio.state_dict().items():
        torch.testing.assert_close(
            images_moved.model.audio.state_dict()[key], value, rtol=0, atol=0
        )
    for key, value in base.model.image.state_dict().items():
        torch.testing.assert_close(audio_moved.model.image.state_dict()[key], value, rtol=0, atol=0)
    changed = any(
        not torch.equal(value, audio_moved.model.audio.state_dict()[key])
        for key, value in base.model.audio.state_dict().items()
    )
    assert changed  # (the audio tower did see different clips in the same batches)
