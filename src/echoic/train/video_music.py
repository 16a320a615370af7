"""Training of the video–music models on precomputed visual and music streams.

The streams are frame embeddings computed once by frozen encoders (as both seed papers do with
CLIP and MERT / DeepSim), held in a :class:`StreamSet`; only the stream encoders, fusion and heads
of a registered model (:data:`echoic.objectives.video_music.VIDEO_MUSIC_MODELS`) train.

* Batches: shuffled clips, ``batch_size`` per step (the last partial batch of an epoch dropped),
  each trimmed to its longest stream. A trimodal batch gets one prompt per clip, drawn uniformly
  from the clip's ``prompt_choices`` (rows of ``prompts``: every wording true of that clip).
* AdamW, linear warm-up then a constant rate; the temperatures are clamped after each step.
* Budget: stops after ``cpu_minutes`` of this process's CPU time (validation included) or
  ``max_steps``. Every ``eval_every`` steps and at the end, ``validate`` (the caller's score on
  held-out clips, higher is better) picks the checkpoint; the best is restored. One seed drives
  the weights, the batches, the prompt draws and text dropout.

A plain torch loop, as :mod:`echoic.train.sheet` (and for the same reason: pairs of precomputed
streams are not the Lightning loop's corpus crops); a run is seconds to minutes on one CPU thread.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from echoic.errors import ConfigError
from echoic.objectives.video_music import VIDEO_MUSIC_MODELS, StreamBatch, VideoMusicModel

__all__ = [
    "StreamSet",
    "VideoMusicTrainConfig",
    "VideoMusicTrainResult",
    "build_model",
    "held_out_loss",
    "train_video_music",
]

Validate = Callable[[VideoMusicModel], float]


@dataclass
class StreamSet:
    """Paired streams of ``N`` clips (row ``i`` of each field is clip ``i``): padded ``(N, T, D)``
    visual and music streams with ``(N,)`` lengths, ``(N,)`` int64 labels, and for the trimodal
    model a ``(P, Dt)`` prompt table with ``(N, C)`` int64 ``prompt_choices`` into it."""

    visual: torch.Tensor
    visual_lens: torch.Tensor
    music: torch.Tensor
    music_lens: torch.Tensor
    labels: torch.Tensor
    prompts: torch.Tensor | None = None
    prompt_choices: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n = len(self.visual)
        sizes = {len(self.visual_lens), len(self.music), len(self.music_lens), len(self.labels)}
        if self.prompt_choices is not None:
            sizes.add(len(self.prompt_choices))
        if sizes != {n} or (self.prompts is None) != (self.prompt_choices is None):
            raise ConfigError(
                f"expected every field of a StreamSet to have {n} rows and prompts with "
                f"prompt_choices; found row counts {sorted(sizes)}"
            )

    def __len__(self) -> int:
        return len(self.visual)

    def batch(self, index: torch.Tensor, generator: torch.Generator) -> StreamBatch:
        """The clips ``index`` as a :class:`StreamBatch` (prompts drawn with ``generator``)."""
        v_lens, m_lens = self.visual_lens[index], self.music_lens[index]
        text = None
        if self.prompts is not None and self.prompt_choices is not None:
            choices = self.prompt_choices[index]
            pick = torch.randint(choices.shape[1], (len(index),), generator=generator)
            text = self.prompts[choices[torch.arange(len(index)), pick]]
        return StreamBatch(
            self.visual[index, : int(v_lens.max())],
            v_lens,
            self.music[index, : int(m_lens.max())],
            m_lens,
            self.labels[index],
            text,
        )


@dataclass
class VideoMusicTrainConfig:
    """A run: the registered ``model`` name and its config (a dict of overrides or the config
    dataclass), the seed, the optimiser and the budget (module docstring)."""

    model: str = "semi_supervised"
    model_config: Any = field(default_factory=dict)
    seed: int = 0
    cpu_minutes: float = 1.0
    max_steps: int | None = None
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 20
    eval_every: int = 50


@dataclass
class VideoMusicTrainResult:
    """The model (the best checkpoint when validated) and what the run did."""

    model: VideoMusicModel
    losses: list[float] = field(default_factory=list)
    parts: list[dict[str, float]] = field(default_factory=list)
    validation: list[tuple[int, float]] = field(default_factory=list)
    best_step: int | None = None
    cpu_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        head, tail = self.losses[:10], self.losses[-10:]
        return {
            "steps": len(self.losses),
            "cpu_s": round(self.cpu_s, 1),
            "loss_first10": float(np.mean(head)) if head else None,
            "loss_last10": float(np.mean(tail)) if tail else None,
            "validation": self.validation,
            "best_step": self.best_step,
        }


def build_model(name: str, config: Any) -> VideoMusicModel:
    """The registered model ``name`` from its config dataclass or a dict of overrides."""
    from echoic.config import from_dict

    cls = VIDEO_MUSIC_MODELS.get(name)
    if isinstance(config, dict):
        config = from_dict(cls.config_class, config, where=f"video-music model {name!r}")
    elif not isinstance(config, cls.config_class):
        raise ConfigError(
            f"model {name!r} takes a {cls.config_class.__name__} (or a dict); found "
            f"{type(config).__name__}"
        )
    return cls(config)


@torch.no_grad()
def held_out_loss(model: VideoMusicModel, data: StreamSet, seed: int = 0, size: int = 256) -> float:
    """The model's training loss on ``data`` in eval mode (no dropout), in batches of ``size``
    clips (the mean over batches); the prompt draws and text dropout from ``seed``, so the
    number is the same for the same weights. A validation score: ``-held_out_loss``."""
    was = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    losses = []
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for lo in range(0, len(data), size):
            index = torch.arange(lo, min(lo + size, len(data)))
            losses.append(float(model.loss(data.batch(index, generator))[0]))
    model.train(was)
    return float(np.mean(losses))


def _batches(n: int, size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    size = min(size, n)
    while True:
        order = torch.randperm(n, generator=generator)
        for lo in range(0, n - size + 1, size):
            yield order[lo : lo + size]


def train_video_music(
    config: VideoMusicTrainConfig,
    train: StreamSet,
    validate: Validate | None = None,
    log: Callable[[str], None] = print,
) -> VideoMusicTrainResult:
    """Train ``config.model`` on ``train`` (module docstring)."""
    if len(train) < 2:
        raise ConfigError(f"contrastive training needs >= 2 clips; found {len(train)}")
    torch.manual_seed(config.seed)
    model = build_model(config.model, config.model_config).train()
    generator = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    warm = max(1, config.warmup_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warm))
    result = VideoMusicTrainResult(model)
    best: dict[str, Any] = {"score": -math.inf, "state": None}
    start = time.process_time()

    def check(step: int) -> None:
        if validate is None:
            return
        score = validate(model)
        result.validation.append((step, round(score, 5)))
        if score > best["score"]:
            best.update(score=score, state=copy.deepcopy(model.state_dict()))
            result.best_step = step
        model.train()

    check(0)
    steps = 0
    for index in _batches(len(train), config.batch_size, generator):
        loss, parts = model.loss(train.batch(index, generator))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        model.clamp_scales()
        steps += 1
        result.losses.append(float(loss.detach()))
        result.parts.append(parts)
        if steps % config.eval_every == 0:
            check(steps)
            recent = float(np.mean(result.losses[-config.eval_every :]))
            log(f"  {config.model} step {steps}: loss {recent:.4f}")
        result.cpu_s = time.process_time() - start
        if result.cpu_s >= config.cpu_minutes * 60.0 or (
            config.max_steps is not None and steps >= config.max_steps
        ):
            break
    if not result.validation or result.validation[-1][0] != steps:
        check(steps)
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    result.cpu_s = time.process_time() - start
    return VideoMusicTrainResult(
        model.eval(),
        result.losses,
        result.parts,
        result.validation,
        result.best_step,
        result.cpu_s,
    )
