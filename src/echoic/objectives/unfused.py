"""UNFUSED (``unfused``): Seth et al. 2023, "UNFUSED: UNsupervised Finetuning Using SElf supervised
Distillation" — distil a trained model's clustered features into a fresh, smaller encoder.

A frozen teacher (a trained echoic model: directory or registered name, ``teacher``) runs on
every batch; layer ``teacher_layer`` of it is turned into pseudo-labels by a fitted ``kmeans``
tokenizer (``tokenizer``; ``echoic tokenizer fit`` on that layer), or — when None — by a seeded
``random_projection`` of ``codebook_size`` codes built in place (tests and smoke runs). The
student is the encoder this objective trains (the recipe's ``model.encoder``: a fresh, smaller
one, e.g. fewer blocks or a narrower width than the teacher's; it must have the teacher's token
grid). Multi-exit heads: a LayerNorm + linear classifier after each of ``exit_layers`` student
blocks (default: at 1/3, 2/3 and the full depth) predicts the pseudo-label of every
non-padding token; the loss is the mean of the exits' cross-entropies.

Light masking (a choice of ours, as augmentation, not a masked-prediction task): HuBERT spans
with ``mask_prob`` 0.02 and ``mask_length`` 5 (about 10 % of the frames) are replaced by a learned
mask embedding, and the loss covers every token, hidden or not; ``mask_prob: 0`` turns it off
(the loss is then a pure function of the batch: no random choice at all).

Deviations: UNFUSED's student is trained on the pseudo-labels of the target task's own audio and
then fine-tuned; here the pseudo-labels come from the pretraining corpus (the tokenizer is fitted
on it) and there is no fine-tuning stage (``echoic eval`` probes the export). The multi-exit heads
are our reading of the issue, not taken from the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

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

__all__ = ["UnfusedConfig", "UnfusedObjective", "default_exits"]


def default_exits(depth: int) -> list[int]:
    """Exits after blocks ``depth/3``, ``2 depth/3`` and ``depth`` (distinct, at least 1)."""
    return sorted({max(1, round(depth * k / 3)) for k in (1, 2, 3)})


@dataclass
class UnfusedConfig:
    """Settings of :class:`UnfusedObjective`.

    teacher / teacher_layer: the trained model (directory or registered name; None: a seeded
        random copy of the student's architecture, tests only) and the layer clustered (-1: last).
    tokenizer: a fitted ``kmeans`` directory over that layer; None: an in-place random
        projection of ``codebook_size`` codes (``codebook_dim``-d, ``tokenizer_seed``).
    exit_layers: student blocks (1 … depth) with a classifier; None: :func:`default_exits`.
    mask_prob / mask_length: light span masking (0 turns it off).
    """

    teacher: str | None = None
    teacher_layer: int = -1
    tokenizer: str | None = None
    codebook_size: int = 100
    codebook_dim: int = 16
    tokenizer_seed: int = 0
    teacher_seed: int = 0
    exit_layers: list[int] | None = None
    mask_prob: float = 0.02
    mask_length: int = 5

    def __post_init__(self) -> None:
        if not 0.0 <= self.mask_prob < 1.0 or self.mask_length < 1:
            raise ConfigError(
                "unfused needs 0 <= mask_prob < 1 and mask_length >= 1; found "
                f"{self.mask_prob}, {self.mask_length}."
            )


@register("unfused")
class UnfusedObjective(Objective):
    """Teacher layer → k-means ids; student (lightly masked) → classifier at several exits (CE)."""

    config_class = UnfusedConfig

    def __init__(self, encoder: Encoder, config: UnfusedConfig) -> None:
        super().__init__(encoder, config)
        spec = encoder.spec
        where = "unfused teacher"
        teacher = load_teacher(config.teacher, encoder, config.teacher_seed, where)
        in_place = {
            "codebook_size": config.codebook_size,
            "codebook_dim": config.codebook_dim,
            "seed": config.tokenizer_seed,
        }
        self.targets = TeacherTargets(
            teacher, config.teacher_layer, config.tokenizer, in_place, where
        )
        sizes = self.targets.codebook_sizes
        if len(set(sizes)) != 1:
            raise ConfigError(
                f"{where}: the tokenizer's codebooks must all be the same size; found {sizes}."
            )
        self.n_codebooks, self.n_classes = len(sizes), sizes[0]
        exits = config.exit_layers if config.exit_layers is not None else default_exits(spec.depth)
        if not exits or any(not 1 <= e <= spec.depth for e in exits):
            raise ConfigError(
                f"unfused.exit_layers must be student blocks 1 … {spec.depth}; found {exits}."
            )
        self.exits = sorted(set(exits))
        self.exit_heads = nn.ModuleList(
            nn.Sequential(
                nn.LayerNorm(spec.width), nn.Linear(spec.width, self.n_codebooks * self.n_classes)
            )
            for _ in self.exits
        )
        self.mask_embedding = nn.Parameter(torch.empty(1, 1, spec.width).uniform_())

    def train(self, mode: bool = True) -> UnfusedObjective:
        super().train(mode)
        self.targets.train(False)
        return self

    def forward(self, batch: TrainBatch, generator: torch.Generator) -> ObjectiveOutput:
        """Loss: mean over exits of the CE of every non-padding token's pseudo-label."""
        features = batch.features
        c = self.config
        out, masked, padding = span_masked_forward(
            self.encoder, features, self.mask_embedding, c.mask_prob, c.mask_length, generator
        )
        ids = self.targets(features, self.encoder)  # (B, N, C)
        valid = ~padding
        has_valid = valid.any(1)
        losses = []
        logs: dict[str, float] = {}
        for layer, head in zip(self.exits, self.exit_heads, strict=True):
            hidden = out.layers[layer]
            logits = head(hidden).reshape(*hidden.shape[:2], self.n_codebooks, self.n_classes)
            ce, accuracy = per_item_cross_entropy(logits, ids, valid)
            exit_ce = masked_mean(ce[None], has_valid[None])
            losses.append(exit_ce)
            logs[f"ce_exit{layer}"] = float(exit_ce.detach())
            logs[f"accuracy_exit{layer}"] = float(masked_mean(accuracy[None], has_valid[None]))
        loss = torch.stack(losses).mean()
        logs["masked_fraction"] = float(masked_mean(masked.float(), valid))
        return ObjectiveOutput(loss=loss, logs=logs)
