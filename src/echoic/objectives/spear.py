"""SPEAR (``spear``): Yang et al. 2025, "SPEAR: A Unified SSL Framework for Learning Speech and
Audio Representations".

Masked prediction of multi-codebook VQ (MVQ) codes of two frozen teachers' features: a
speech-leaning teacher (SPEAR: WavLM) and a general-audio teacher (SPEAR: Dasheng). Both run on
every batch (the features the student reads), one layer each (``teacher_layers``), and each
teacher's frames are quantised by its own tokenizer (``tokenizers``: fitted ``mvq`` directories,
``echoic tokenizer fit``; or, when None, a seeded multi-codebook ``random_projection`` of
``n_codebooks`` × ``codebook_size`` built in place, for tests and smoke runs). Spans of the
student's input are hidden as in HuBERT (``mask_prob`` / ``mask_length``, a learned mask
embedding; :func:`~echoic.objectives.teachers.span_masked_forward`); a linear head per teacher
gives ``n_codebooks`` × ``codebook_size`` logits (one softmax per codebook: one prediction head
per codebook per teacher) and the loss is the cross-entropy of the hidden, non-padding tokens'
codes.

Asymmetric loss: item ``i``'s loss is ``w_s(i) · CE_speech(i) + w_a(i) · CE_audio(i)``, averaged
over items, with ``(w_s, w_a)`` = ``speech_weights`` for speech items and ``audio_weights`` for
general-audio items (defaults: both teachers on speech, only the audio teacher on audio, whose
speech-teacher codes mean little). The item's domain comes from a per-item bool tensor
``is_speech`` on the batch when the data pipeline provides one; echoic's pretraining batches do
not carry the manifest's source column yet, so every item takes the ``default_domain`` weights —
``equal`` (both teachers, weight 1: the fallback for a mixed corpus), ``speech`` or ``audio``.

Deviations (see ``docs/pretraining.md``): product (not additive) MVQ codebooks
(:mod:`echoic.tokenizers.mvq`); teachers must share the student's token grid (same encoder
family and frontend; SPEAR aligns teachers of other frame rates to the student's frames);
no token mixing of in-batch sound scenes; per-item domains need the pipeline to provide them.
Without teacher models (``teachers: [null, null]``) each teacher is a seeded random
initialisation of the student's architecture — a wiring check, not SPEAR.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from echoic.encoders.base import Encoder
from echoic.errors import ConfigError
from echoic.objectives.base import Objective, masked_mean, register
from echoic.objectives.teachers import (
    TeacherTargets,
    load_teacher,
    per_item_cross_entropy,
    span_masked_forward,
)
from echoic.types import ObjectiveOutput, TrainBatch

__all__ = ["DOMAINS", "SpearConfig", "SpearObjective"]

DOMAINS = ("equal", "speech", "audio")
TEACHER_NAMES = ("speech", "audio")


def _pair(value: Sequence[object], name: str) -> None:
    if len(value) != 2:
        raise ConfigError(
            f"spear.{name} needs two entries, [speech teacher, audio teacher]; found {value!r}."
        )


@dataclass
class SpearConfig:
    """Settings of :class:`SpearObjective`; lists are ``[speech teacher, audio teacher]``.

    teachers: echoic model directories or registered names; None: a seeded random copy of the
        student's architecture (``teacher_seed`` + index; tests only).
    teacher_layers: the layer of each teacher that is quantised (-1: the last).
    tokenizers: fitted tokenizer directories (``mvq``) over those layers; None: an in-place
        random projection of ``n_codebooks`` codebooks of ``codebook_size`` codes
        (``codebook_dim``-d, seeded ``tokenizer_seed`` + index). SPEAR: 16 × 256.
    mask_prob / mask_length: HuBERT span masking (8 %, 10: about half the frames hidden).
    speech_weights / audio_weights: (w_speech_teacher, w_audio_teacher) for items of each domain.
    default_domain: the domain of items whose batch carries no ``is_speech`` (``equal``: weights
        1 and 1).
    """

    teachers: list[str | None] = field(default_factory=lambda: [None, None])
    teacher_layers: list[int] = field(default_factory=lambda: [-1, -1])
    tokenizers: list[str | None] = field(default_factory=lambda: [None, None])
    n_codebooks: int = 16
    codebook_size: int = 256
    codebook_dim: int = 16
    tokenizer_seed: int = 0
    teacher_seed: int = 0
    mask_prob: float = 0.08
    mask_length: int = 10
    speech_weights: list[float] = field(default_factory=lambda: [1.0, 1.0])
    audio_weights: list[float] = field(default_factory=lambda: [0.0, 1.0])
    default_domain: str = "equal"

    def __post_init__(self) -> None:
        for name in ("teachers", "teacher_layers", "tokenizers", "speech_weights", "audio_weights"):
            _pair(getattr(self, name), name)
        if not 0.0 < self.mask_prob < 1.0 or self.mask_length < 1:
            raise ConfigError(
                "spear needs 0 < mask_prob < 1 and mask_length >= 1; found "
                f"{self.mask_prob}, {self.mask_length}."
            )
        if self.default_domain not in DOMAINS:
            raise ConfigError(
                f"spear.default_domain must be one of {DOMAINS}; found {self.default_domain!r}."
            )
        if min(*self.speech_weights, *self.audio_weights) < 0:
            raise ConfigError("spear loss weights must be >= 0.")


@register("spear")
class SpearObjective(Objective):
    """Hidden spans → encoder → one head per teacher → MVQ codes of both teachers (CE)."""

    config_class = SpearConfig

    def __init__(self, encoder: Encoder, config: SpearConfig) -> None:
        super().__init__(encoder, config)
        width = encoder.spec.width
        targets, heads, sizes = [], [], []
        for t, name in enumerate(TEACHER_NAMES):
            where = f"spear {name} teacher"
            teacher = load_teacher(config.teachers[t], encoder, config.teacher_seed + t, where)
            in_place = {
                "n_codebooks": config.n_codebooks,
                "codebook_size": config.codebook_size,
                "codebook_dim": config.codebook_dim,
                "seed": config.tokenizer_seed + t,
            }
            target = TeacherTargets(
                teacher, config.teacher_layers[t], config.tokenizers[t], in_place, where
            )
            books = target.codebook_sizes
            if len(set(books)) != 1:
                raise ConfigError(
                    f"{where}: the tokenizer's codebooks must all be the same size; found {books}."
                )
            targets.append(target)
            sizes.append((len(books), books[0]))
            heads.append(nn.Linear(width, len(books) * books[0]))
        self.targets = nn.ModuleList(targets)
        self.heads = nn.ModuleList(heads)
        self.sizes = sizes
        self.mask_embedding = nn.Parameter(torch.empty(1, 1, width).uniform_())
        weights = {
            "speech": config.speech_weights,
            "audio": config.audio_weights,
            "equal": [1.0, 1.0],
        }
        self.domain_table = {k: torch.tensor(v, dtype=torch.float32) for k, v in weights.items()}

    def train(self, mode: bool = True) -> SpearObjective:
        super().train(mode)
        self.targets.train(False)
        return self

    def item_weights(self, is_speech: torch.Tensor | None, batch: int) -> torch.Tensor:
        """``(B, 2)`` loss weights (speech teacher, audio teacher) of every item: by domain when
        ``is_speech`` ``(B,)`` is given, else ``default_domain``'s for all."""
        if is_speech is None:
            return self.domain_table[self.config.default_domain].expand(batch, 2)
        if is_speech.shape != (batch,):
            raise ConfigError(
                f"spear: batch.is_speech must be (B,)=({batch},); found {tuple(is_speech.shape)}."
            )
        speech, audio = self.domain_table["speech"], self.domain_table["audio"]
        return torch.where(is_speech.bool().cpu()[:, None], speech, audio)

    def forward(self, batch: TrainBatch, generator: torch.Generator) -> ObjectiveOutput:
        """Loss: per-item, domain-weighted CE of both teachers' codes on hidden tokens."""
        features = batch.features
        c = self.config
        out, masked, padding = span_masked_forward(
            self.encoder, features, self.mask_embedding, c.mask_prob, c.mask_length, generator
        )
        valid = masked & ~padding
        hidden = out.last
        n_items = hidden.shape[0]
        # the pipeline may one day carry each item's domain (manifest source column)
        weights = self.item_weights(getattr(batch, "is_speech", None), n_items)
        weights = weights.to(hidden.device)
        loss = hidden.new_zeros((), dtype=torch.float32)
        logs: dict[str, float] = {}
        for t, name in enumerate(TEACHER_NAMES):
            ids = self.targets[t](features, self.encoder)  # (B, N, C)
            books, classes = self.sizes[t]
            logits = self.heads[t](hidden).reshape(*hidden.shape[:2], books, classes)
            ce, accuracy = per_item_cross_entropy(logits, ids, valid)
            loss = loss + (weights[:, t] * ce).mean()
            has_valid = valid.any(1)
            logs[f"ce_{name}"] = float(masked_mean(ce.detach()[None], has_valid[None]))
            logs[f"accuracy_{name}"] = float(masked_mean(accuracy[None], has_valid[None]))
        logs["masked_fraction"] = float(masked_mean(masked.float(), ~padding))
        logs["speech_teacher_weight"] = float(weights[:, 0].mean())
        return ObjectiveOutput(loss=loss, logs=logs)
