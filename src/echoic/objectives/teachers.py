"""Frozen teacher models and their discrete targets, for distillation objectives (``spear``,
``unfused``).

:class:`TeacherTargets` runs a frozen teacher encoder on every batch (the features the student
reads), takes one of its layers for every token of the student's full grid and turns it into ids
with a frozen tokenizer: a fitted tokenizer directory (``mvq`` for SPEAR, ``kmeans`` for UNFUSED;
``echoic tokenizer fit``), or — when none is given — a seeded ``random_projection`` quantiser
built in place (``n_codebooks`` codebooks; frames are layer-normalised first, since a layer's
frames are not standardised and the quantiser compares directions).

The teacher is an echoic model directory or a registered model name (:func:`echoic.cards.load`),
or ``None``: a frozen, seeded random initialisation of the student's own architecture (a random
teacher: a weak but deterministic target, for tests and smoke recipes; never a real recipe). The
teacher must read the student's features and have its token grid (same family and frontend;
width and depth may differ). Teacher and tokenizer have no ``requires_grad`` parameter, stay in
eval mode and are saved in the objective's state, so a checkpoint is self-contained.
"""

from __future__ import annotations

import torch
from torch import nn

from echoic.cards import load
from echoic.checkpoint import EchoicModel
from echoic.encoders.base import Encoder, EncoderSpec
from echoic.errors import ConfigError
from echoic.objectives.discrete import (
    FrozenTargets,
    frozen_tokenizer,
    grid_time_index,
    token_frames,
)
from echoic.objectives.hubert import hubert_span_mask
from echoic.types import EncoderOutput, Features

__all__ = [
    "TeacherTargets",
    "load_teacher",
    "per_item_cross_entropy",
    "same_grid",
    "span_masked_forward",
]

GRID_KEYS = ("input", "n_bins", "freq_tokens", "stride", "receptive", "partial_last", "flatten")


def same_grid(student: EncoderSpec, teacher: EncoderSpec) -> bool:
    """Whether ``teacher`` reads the student's features and gives its token grid."""
    return all(getattr(student, k) == getattr(teacher, k) for k in GRID_KEYS)


def load_teacher(name_or_dir: str | None, student: Encoder, seed: int, where: str) -> Encoder:
    """The frozen teacher encoder ``name_or_dir`` stands for (model directory or registered
    name), or a seeded random initialisation of ``student``'s architecture when None."""
    if name_or_dir is None:
        config = getattr(student, "config", None)
        if config is None or not hasattr(config, "build"):
            raise ConfigError(
                f"{where}: without a teacher model the teacher is a random copy of the student's "
                f"architecture, but {type(student).__name__} has no buildable config; set the "
                "teacher to a model directory or a registered name."
            )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            teacher: Encoder = config.build()
    else:
        model = load(name_or_dir)
        if not isinstance(model, EchoicModel):
            raise ConfigError(
                f"{where}: teacher {name_or_dir!r} is a {type(model).__name__}, not an echoic "
                "model; use an echoic model directory or a registered echoic name."
            )
        teacher = model.encoder
        if not same_grid(student.spec, teacher.spec):
            raise ConfigError(
                f"{where}: teacher {name_or_dir!r} must read the student's features and give its "
                f"token grid; found teacher {teacher.spec}, student {student.spec}. Use a "
                "teacher of the same encoder family and frontend (width and depth may differ)."
            )
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.eval()


class TeacherTargets(FrozenTargets):
    """Frozen teacher + tokenizer: ``(features, student) → ids (B, N, n_codebooks)``."""

    def __init__(
        self,
        teacher: Encoder,
        layer: int,
        tokenizer: str | None,
        in_place: dict[str, int],
        where: str,
    ) -> None:
        super().__init__()
        depth = teacher.spec.depth + 1
        if not -depth <= layer < depth:
            raise ConfigError(
                f"{where}: teacher layer {layer} does not exist; the teacher has layers 0 … "
                f"{depth - 1} (or -1 for the last)."
            )
        self.teacher = teacher
        self.layer = layer
        self.normalize = tokenizer is None
        fix = f"{where}: fit it on that teacher's layer (echoic tokenizer fit)."
        self.tokenizer = frozen_tokenizer(tokenizer, teacher.spec.width, in_place, None, fix)
        self.freeze()

    @torch.no_grad()
    def forward(self, features: Features, student: Encoder) -> torch.Tensor:
        """``(B, N, n_codebooks)`` int64 ids of every token of ``student``'s full grid."""
        frames = token_frames("layer", features, self.teacher, self.layer)
        if self.normalize:
            frames = nn.functional.layer_norm(frames, frames.shape[-1:])
        return self.tokenizer(frames, student.token_padding(features))


def span_masked_forward(
    encoder: Encoder,
    features: Features,
    mask_embedding: torch.Tensor,
    mask_prob: float,
    mask_length: int,
    generator: torch.Generator,
) -> tuple[EncoderOutput, torch.Tensor, torch.Tensor]:
    """HuBERT-style span masking (:func:`~echoic.objectives.hubert.hubert_span_mask`, whole time
    columns of a 2-D grid) → every token through ``encoder``, hidden ones as ``mask_embedding``.

    Returns the encoder output, ``masked`` ``(B, N)`` and ``padding`` ``(B, N)``; ``mask_prob ==
    0`` hides nothing (``masked`` all False)."""
    spec = encoder.spec
    device = features.values.device
    padding = encoder.token_padding(features)
    grid = encoder.grid(features.n_frames)
    time_index = grid_time_index(spec, grid)
    if mask_prob > 0:
        step_padding = torch.ones(padding.shape[0], grid[1], dtype=torch.bool)
        step_padding[:, time_index] = padding.cpu()
        valid_steps = (~step_padding).sum(1)
        steps = hubert_span_mask(valid_steps, grid[1], mask_prob, mask_length, generator)
        masked = steps[:, time_index].to(device)
    else:
        masked = torch.zeros_like(padding)
    tokens, pad, grid = encoder.embed_tokens(features, add_positions=False)
    tokens = torch.where(masked[..., None], mask_embedding.to(tokens.dtype), tokens)
    tokens = encoder.add_positions(tokens, grid, pad)
    return encoder.forward_tokens(tokens, pad, features), masked, padding


def per_item_cross_entropy(
    logits: torch.Tensor, ids: torch.Tensor, valid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """logits ``(B, N, C, K)``, ids ``(B, N, C)``, valid ``(B, N)`` → per-item mean cross-entropy
    over valid tokens and codebooks ``(B,)`` (0 for an item without a valid token) and per-item
    top-1 accuracy ``(B,)``."""
    batch, n, books, classes = logits.shape
    ce = nn.functional.cross_entropy(
        logits.float().reshape(-1, classes), ids.reshape(-1), reduction="none"
    ).reshape(batch, n, books)
    correct = (logits.argmax(-1) == ids).float().mean(-1)
    weight = valid.float()
    count = weight.sum(1).clamp_min(1.0)
    return (ce.mean(-1) * weight).sum(1) / count, (correct * weight).sum(1) / count
