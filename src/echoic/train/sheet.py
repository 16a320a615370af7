"""Two-tower audio–sheet training: optional per-modality SSL (stage A), then aligned pairs (stage B).

* Stage A (``ssl_audio``, ``ssl_image``; each optional): SimCLR on one tower at a time. Two
  augmented views (:mod:`echoic.train.sheet_augment`) of each train snippet's audio, or of its
  image, go through the tower and a throw-away projection head (Linear → ReLU → Linear); loss
  :func:`~echoic.objectives.sheet.nt_xent`. Only the train split's audio and images are read,
  each modality on its own: the pairing is never seen. The head is dropped afterwards (SimCLR).
* Stage B (``finetune``; None stops after stage A): the symmetric cross-modal InfoNCE of aligned (audio, image) train pairs
  with the learned temperature, every weight training; light views (gain, noise, a 0.1-s shift;
  a small crop and affine of the image). Every ``eval_every`` steps and at the end, ``validate``
  (the caller's score on the valid split, higher is better) picks the checkpoint; the best one is
  restored at the end. Validation only chooses; it never trains.
* Budget: each stage stops after ``cpu_minutes`` of this process's CPU time (validation
  included) or ``max_steps``. AdamW, linear warm-up then constant rate. One seed drives the
  weights, the batches and the views (one ``torch.Generator`` per stage).

Why a plain torch loop and not the Lightning pretraining loop (:mod:`echoic.train.module`): that
loop's data path reads corpus manifests of audio (and captions) into ``TrainBatch``es of crops;
pairs of images and clips, and two towers each pretrained alone, would need a new batch type,
data module and objective-side branching for a few hundred lines of simple code. This loop has no
workers, no resume and no distributed code: a run is minutes on one CPU thread.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from echoic.objectives.joint import Head
from echoic.objectives.sheet import SheetModel, SheetModelConfig, cross_modal_loss, nt_xent
from echoic.tasks.sheet_pairs import SheetPairs
from echoic.train.sheet_augment import (
    AudioAugmentConfig,
    ImageAugmentConfig,
    augment_audio,
    augment_images,
)
from echoic.vision import image_batch

__all__ = [
    "SheetTrainConfig",
    "SheetTrainResult",
    "StageConfig",
    "normalised_config",
    "train_sheet",
]

Validate = Callable[[SheetModel], float]


@dataclass
class StageConfig:
    """One stage: stops after ``cpu_minutes`` of CPU time or ``max_steps`` (None: no cap)."""

    cpu_minutes: float = 3.0
    max_steps: int | None = None
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 0.05
    warmup_steps: int = 10


@dataclass
class SheetTrainConfig:
    """A run: the model, the seed, the stages (None skips a stage) and the views."""

    model: SheetModelConfig = field(default_factory=SheetModelConfig)
    seed: int = 0
    ssl_audio: StageConfig | None = None
    ssl_image: StageConfig | None = None
    finetune: StageConfig | None = field(default_factory=lambda: StageConfig(cpu_minutes=4.0))
    ssl_temperature: float = 0.2
    ssl_head: tuple[int, int] = (256, 128)
    audio_views: AudioAugmentConfig = field(default_factory=AudioAugmentConfig)
    image_views: ImageAugmentConfig = field(default_factory=ImageAugmentConfig)
    pair_audio_views: AudioAugmentConfig = field(
        default_factory=lambda: AudioAugmentConfig(crop_s=None, gain_db=3.0, noise_p=0.5)
    )
    pair_image_views: ImageAugmentConfig = field(
        default_factory=lambda: ImageAugmentConfig(
            crop=(1.0, 1.0),
            max_translate=(4, 8),
            max_rotate_deg=1.0,
            scale=(0.97, 1.03),
            max_shear_deg=1.0,
            thicken=0.3,
            noise_std=0.03,
        )
    )
    eval_every: int = 25
    norm_clips: int = 64
    """Train clips whose log-mel mean / std normalise the frontend."""


@dataclass
class StageLog:
    """What one stage did: steps, CPU seconds, mean loss of its first and last 10 steps."""

    name: str
    steps: int = 0
    cpu_s: float = 0.0
    losses: list[float] = field(default_factory=list)
    validation: list[tuple[int, float]] = field(default_factory=list)
    best_step: int | None = None

    def summary(self) -> dict[str, Any]:
        head, tail = self.losses[:10], self.losses[-10:]
        return {
            "steps": self.steps,
            "cpu_s": round(self.cpu_s, 1),
            "loss_first10": float(np.mean(head)) if head else None,
            "loss_last10": float(np.mean(tail)) if tail else None,
            "validation": self.validation,
            "best_step": self.best_step,
        }


@dataclass
class SheetTrainResult:
    model: SheetModel
    stages: list[StageLog]

    def summary(self) -> dict[str, Any]:
        return {s.name: s.summary() for s in self.stages}


def normalised_config(config: SheetModelConfig, train: SheetPairs, clips: int) -> SheetModelConfig:
    """``config`` with the frontend's ``mean`` / ``std`` measured on the first ``clips`` train
    clips' log-mel frames (the sounding part of each clip)."""
    from echoic.features.base import build_frontend
    from echoic.types import AudioBatch

    frontend_config = {k: v for k, v in config.frontend_config.items() if k not in ("mean", "std")}
    frontend = build_frontend(config.frontend, frontend_config)
    waves = torch.from_numpy(train.audio[:clips].astype(np.float32) / 32768.0)
    lengths = torch.from_numpy(
        (train.durations_s[:clips] * train.sample_rate).round().astype(np.int64)
    )
    with torch.no_grad():
        features = frontend(AudioBatch(waves, lengths, train.sample_rate))
    frames = torch.cat([features.values[i, :, : int(n)] for i, n in enumerate(features.lengths)], 1)
    stats = {"mean": float(frames.mean()), "std": float(frames.std())}
    return dataclasses.replace(config, frontend_config={**frontend_config, **stats})


def _batches(n: int, size: int, generator: torch.Generator) -> Any:
    """Endless shuffled batches of ``size`` indices (the last partial batch of an epoch dropped)."""
    size = min(size, n)
    while True:
        order = torch.randperm(n, generator=generator)
        for lo in range(0, n - size + 1, size):
            yield order[lo : lo + size]


def _optimiser(params: list[nn.Parameter], stage: StageConfig) -> tuple[Any, Any]:
    opt = torch.optim.AdamW(params, lr=stage.lr, weight_decay=stage.weight_decay)
    warm = max(1, stage.warmup_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warm))
    return opt, sched


def _run_stage(
    name: str,
    stage: StageConfig,
    params: list[nn.Parameter],
    step: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    generator: torch.Generator,
    after_step: Callable[[int], None] | None = None,
    log: Callable[[str], None] = print,
) -> StageLog:
    opt, sched = _optimiser(params, stage)
    record = StageLog(name)
    start = time.process_time()
    limit = stage.cpu_minutes * 60.0
    for index in _batches(n, stage.batch_size, generator):
        loss = step(index)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        record.steps += 1
        record.losses.append(float(loss.detach()))
        if after_step is not None:
            after_step(record.steps)
        record.cpu_s = time.process_time() - start
        if record.steps % 10 == 0:
            recent = float(np.mean(record.losses[-10:]))
            log(f"  {name} step {record.steps}: loss {recent:.4f} ({record.cpu_s:.0f} CPU-s)")
        if record.cpu_s >= limit or (
            stage.max_steps is not None and record.steps >= stage.max_steps
        ):
            break
    return record


def _waves(pairs: SheetPairs, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    rows = index.numpy()
    waves = torch.from_numpy(pairs.audio[rows].astype(np.float32) / 32768.0)
    return waves, torch.from_numpy(pairs.durations_s[rows]).float()


def _images(
    pairs: SheetPairs, index: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    chosen = [pairs.images[i] for i in index.tolist()]
    widths = torch.tensor([min(img.shape[1], width) for img in chosen])
    return image_batch(chosen, height, width), widths


def train_sheet(
    config: SheetTrainConfig,
    train: SheetPairs,
    validate: Validate | None = None,
    log: Callable[[str], None] = print,
) -> SheetTrainResult:
    """Train a :class:`SheetModel` on ``train`` (module docstring); returns it (best checkpoint
    by ``validate`` when given) and what each stage did."""
    torch.manual_seed(config.seed)
    model = SheetModel(normalised_config(config.model, train, config.norm_clips)).train()
    rate, height, width = train.sample_rate, model.image.height, model.image.width
    stages: list[StageLog] = []
    g = torch.Generator().manual_seed(config.seed)

    if config.ssl_audio is not None:
        head = Head([model.audio_width, *config.ssl_head])

        def audio_step(index: torch.Tensor) -> torch.Tensor:
            waves, durations = _waves(train, index)
            views = [augment_audio(waves, durations, rate, config.audio_views, g) for _ in range(2)]
            z = [head(model.audio_features(v)) for v in views]
            return nt_xent(z[0], z[1], config.ssl_temperature)

        params = [*model.audio.parameters(), *head.parameters()]
        stages.append(
            _run_stage("ssl_audio", config.ssl_audio, params, audio_step, len(train), g, log=log)
        )

    if config.ssl_image is not None:
        head = Head([model.image.dim, *config.ssl_head])

        def image_step(index: torch.Tensor) -> torch.Tensor:
            images, widths = _images(train, index, height, width)
            views = [augment_images(images, widths, config.image_views, g) for _ in range(2)]
            z = [head(model.image_features(v)) for v in views]
            return nt_xent(z[0], z[1], config.ssl_temperature)

        params = [*model.image.parameters(), *head.parameters()]
        stages.append(
            _run_stage("ssl_image", config.ssl_image, params, image_step, len(train), g, log=log)
        )

    best: dict[str, Any] = {"score": -math.inf, "state": None, "step": None}
    validation: list[tuple[int, float]] = []

    def check(step: int) -> None:
        if validate is None:
            return
        score = validate(model)
        validation.append((step, round(score, 5)))
        if score > best["score"]:
            best.update(score=score, state=copy.deepcopy(model.state_dict()), step=step)
        model.train()

    def pair_step(index: torch.Tensor) -> torch.Tensor:
        waves, durations = _waves(train, index)
        waves = augment_audio(waves, durations, rate, config.pair_audio_views, g)
        images, widths = _images(train, index, height, width)
        images = augment_images(images, widths, config.pair_image_views, g)
        loss, _ = cross_modal_loss(
            model.embed_audio(waves), model.embed_image(images), model.scale()
        )
        return loss

    def after(step: int) -> None:
        model.clamp_scale()
        if step % config.eval_every == 0:
            check(step)

    if config.finetune is None:
        return SheetTrainResult(model.eval(), stages)
    check(0)  # the untrained heads (or the SSL towers) are a candidate too
    params = list(model.parameters())
    ran = _run_stage("finetune", config.finetune, params, pair_step, len(train), g, after, log)
    if not validation or validation[-1][0] != ran.steps:
        check(ran.steps)
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    ran.validation, ran.best_step = validation, best["step"]
    stages.append(ran)
    return SheetTrainResult(model.eval(), stages)
