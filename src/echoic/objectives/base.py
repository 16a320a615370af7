"""The :class:`Objective` contract, the objective registry and helpers shared by SSL methods.

An objective is an ``nn.Module`` that owns the student encoder it trains plus everything that is
specific to its method (heads, decoders, predictors, EMA teachers, mask tokens). It sees the
encoder only through the Encoder protocol (``echoic.encoders.base``: ``spec``, ``grid``,
``token_padding``, ``token_targets``, ``embed_tokens`` / ``add_positions`` / ``forward_tokens``),
so it works with every encoder family whose spec it accepts (:meth:`Objective.check_encoder`).
The training loop only ever calls three things, whatever the method:

* ``objective(batch, generator) -> ObjectiveOutput`` — one training forward on a
  :class:`~echoic.types.TrainBatch` (features, which items are views of which clip, and the
  waveform when ``needs_waveform``); every random choice (masks, noise) is drawn from
  ``generator`` (dropout / drop-path use torch's global RNG);
* ``objective.after_optimizer_step() -> dict[str, float]`` — called once after every optimiser
  step (EMA teachers move here);
* ``objective.encoder`` — the student encoder, exported at the end.

Parameters that must not be optimised (teachers) have ``requires_grad=False``; the trainer builds
its optimiser from ``requires_grad`` parameters only.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, cast

import torch
from torch import nn

from echoic.config import from_dict
from echoic.encoders.base import Encoder, EncoderSpec
from echoic.errors import ConfigError
from echoic.registry import Registry
from echoic.types import Features, ObjectiveOutput, TrainBatch

__all__ = [
    "OBJECTIVES",
    "AnnealedEmaTeacher",
    "Objective",
    "annealed_decay",
    "build_objective",
    "device_generator",
    "ema_update",
    "frozen_copy",
    "masked_mean",
    "register",
    "require_keep_idx",
    "token_padding",
]

OBJECTIVES: Registry[type[Objective]] = Registry("objective", discover_package="echoic.objectives")
"""name → Objective subclass; modules of ``echoic.objectives`` register themselves."""


class Objective(nn.Module):
    """Base class of SSL objectives. Subclasses set ``name`` and ``config_class`` and implement
    :meth:`forward`; those with a teacher also override :meth:`teacher` and
    :meth:`after_optimizer_step`."""

    name: ClassVar[str] = ""
    config_class: ClassVar[type[Any]]
    needs_waveform: ClassVar[bool] = False
    """Whether :meth:`forward` reads ``batch.audio`` (codec / CQT targets, waveform views)."""
    needs_text: ClassVar[bool] = False
    """Whether :meth:`forward` reads ``batch.text`` (audio–text objectives): the loop then pairs
    every clip with a caption (``data.captions``) tokenized by :meth:`caption_tokenizer`."""
    saves_beside_model: ClassVar[bool] = False
    """Whether the export adds files beside the audio model (:meth:`save_beside_model`)."""
    min_views: ClassVar[int] = 1
    """Views per clip the method needs in a batch (two-view methods: 2); ``data.views``."""
    embed_defaults: ClassVar[dict[str, Any]] = {}
    """The embedding recipe the method's exported models recommend (``EmbedConfig`` fields, e.g.
    M2D's ``{"freq_pool": "concat"}``); the recipe's ``model.embed`` overrides it key by key."""

    def __init__(self, encoder: Encoder, config: Any) -> None:
        super().__init__()
        self.check_encoder(encoder.spec)
        self.encoder: Encoder = encoder
        self.config = config

    @classmethod
    def check_encoder(cls, spec: EncoderSpec) -> None:
        """Raise :class:`ConfigError` when the method cannot train an encoder of this ``spec``
        (say what it needs and how to get it). The base accepts every encoder."""

    def forward(self, batch: TrainBatch, generator: torch.Generator) -> ObjectiveOutput:
        """One training forward on ``batch``; masks are drawn from ``generator``."""
        raise NotImplementedError

    def teacher(self) -> nn.Module | None:
        """The module that must never receive gradients (EMA teacher), or None."""
        return None

    def caption_tokenizer(self) -> Callable[[list[str]], Any]:
        """``needs_text`` objectives: a picklable ``captions -> TextTokens`` for data workers."""
        raise NotImplementedError(f"objective {self.name!r} does not read captions")

    def save_beside_model(self, directory: Path) -> list[str]:
        """``saves_beside_model`` objectives: write their extra files (e.g. a text tower and
        projection heads) into the exported model ``directory``; returns the file names."""
        return []

    @torch.no_grad()
    def after_optimizer_step(self) -> dict[str, float]:
        """Hook run once after every optimiser step; returns float logs (e.g. the EMA decay)."""
        return {}

    def train(self, mode: bool = True) -> Objective:
        super().train(mode)
        teacher = self.teacher()
        if teacher is not None:
            teacher.eval()  # a teacher never uses dropout / drop-path
        return self


def register(name: str) -> Callable[[type[Objective]], type[Objective]]:
    """Class decorator: register an :class:`Objective` subclass under ``name``."""

    def add(cls: type[Objective]) -> type[Objective]:
        if not dataclasses.is_dataclass(getattr(cls, "config_class", None)):
            raise TypeError(f"objective {name!r} needs a dataclass config_class; got {cls!r}.")
        cls.name = name
        OBJECTIVES.register(name, cls)
        return cls

    return add


def build_objective(
    name: str, encoder: Encoder, config: dict[str, Any] | Any | None = None
) -> Objective:
    """The objective registered as ``name`` around ``encoder``.

    ``config`` is a dict (unknown keys raise :class:`~echoic.errors.ConfigError` naming the
    nearest valid key), an instance of the objective's config dataclass, or None for defaults.
    """
    cls = OBJECTIVES.get(name)
    if config is None or isinstance(config, dict):
        config = from_dict(cls.config_class, config, where=f"objective {name!r}")
    elif not isinstance(config, cls.config_class):
        raise ConfigError(
            f"objective {name!r} expects a dict or a {cls.config_class.__name__}; found "
            f"{type(config).__name__}."
        )
    return cls(encoder, config)


# ------------------------------------------------------------------------------- helpers
def token_padding(features: Features, encoder: Encoder) -> torch.Tensor:
    """``(B, N)`` bool over the full token grid, True on tokens that only cover padding."""
    return encoder.token_padding(features)


def require_keep_idx(name: str, spec: EncoderSpec) -> None:
    """The check of methods that drop tokens (MAE / EAT): the encoder must accept ``keep_idx``."""
    if not spec.accepts_keep_idx:
        raise ConfigError(
            f"objective {name!r} drops hidden tokens before the encoder, which needs an encoder "
            "that accepts kept-token indices (EncoderSpec.accepts_keep_idx); this one does not. "
            "Use an objective that keeps every token (e.g. ssast) or another encoder."
        )


def device_generator(generator: torch.Generator, device: torch.device) -> torch.Generator:
    """A generator on ``device`` seeded from ``generator`` (one draw): for large random tensors
    (e.g. decoder noise) that should be drawn where they are used. Deterministic for a given
    device type; on the CPU it is simply a fresh CPU generator."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return torch.Generator(device=device).manual_seed(seed)


def masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` ``(B, M)`` over entries where ``valid`` ``(B, M)`` is True (0 if none)."""
    weight = valid.to(values.dtype)
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy with ``requires_grad=False`` everywhere, in eval mode (an EMA teacher)."""
    teacher = copy.deepcopy(module)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.eval()


def annealed_decay(start: float, end: float, step: int, end_step: int) -> float:
    """EMA decay rising linearly from ``start`` (step 0) to ``end`` (``end_step`` and after)."""
    if end_step <= 0 or step >= end_step:
        return end
    return start + (end - start) * step / end_step


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    """``teacher = decay * teacher + (1 - decay) * student`` for parameters; buffers are copied."""
    t_params: list[torch.Tensor] = list(teacher.parameters())
    s_params = [p.detach() for p in student.parameters()]
    if len(t_params) != len(s_params):
        raise ConfigError("teacher and student must have the same parameters for an EMA update.")
    if decay >= 1.0:
        return
    torch._foreach_lerp_(t_params, s_params, 1.0 - decay)
    for tb, sb in zip(teacher.buffers(), student.buffers(), strict=True):
        tb.copy_(sb)


class AnnealedEmaTeacher:
    """Mixin (``class X(AnnealedEmaTeacher, Objective)``) for an EMA teacher ``self.ema`` of
    :meth:`ema_source` whose decay anneals from ``config.ema_decay`` to ``config.ema_end_decay``
    over ``config.ema_anneal_end_step`` updates, counted by the buffer ``self.num_updates``
    (EAT / data2vec 2.0, M2D, WavJEPA, ASiT). The subclass builds both in ``__init__``."""

    ema: Any  # the subclass's teacher (an Encoder, or a ModuleDict of encoder + heads)
    encoder: Encoder
    config: Any
    num_updates: torch.Tensor

    def ema_source(self) -> nn.Module:
        """The online module the teacher follows (default: the student encoder)."""
        return self.encoder

    def teacher(self) -> nn.Module:
        return cast(nn.Module, self.ema)

    def current_decay(self) -> float:
        c = self.config
        return annealed_decay(
            c.ema_decay, c.ema_end_decay, int(self.num_updates), c.ema_anneal_end_step
        )

    @torch.no_grad()
    def after_optimizer_step(self) -> dict[str, float]:
        decay = self.current_decay()
        ema_update(self.ema, self.ema_source(), decay)
        self.num_updates += 1
        return {"ema_decay": decay}
