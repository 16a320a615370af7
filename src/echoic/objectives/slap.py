"""SLAP: Siamese language–audio pretraining without negatives (Guinot, Riou et al. 2025).

BYOL (Grill et al. 2020) across modalities. Online branches: audio encoder → pooled → projector
``g_a`` → predictor ``q_a``; text tower → projector ``g_t`` → predictor ``q_t``. Target branches:
EMA copies of the audio encoder and of both projectors (and of the text tower when it trains; a
frozen tower is its own target, so it is never copied). Each online prediction regresses the
*other* modality's target projection, by the normalised MSE ``2 − 2 cos``::

    loss = mean_i [ d(q_a(g_a(a_i)), g'_t(t_i)) + d(q_t(g_t(t_i)), g'_a(a_i)) ]
           + intra_weight · mean_i [ d(q_a(g_a(a_i)), g'_a(a_i)) + d(q_t(g_t(t_i)), g'_t(t_i)) ]

No pair of the batch is pushed apart: what keeps the space from collapsing is the predictor and
the slowly moving target. The objective watches it: every ``collapse_every`` optimiser steps it
logs, for the pooled audio embeddings and the text tower's embeddings fed to the heads
(``audio_*``, ``text_*``) and for the joint-space vectors (``joint_audio_*``, ``joint_text_*``),
the embedding std (std over the batch of the L2-normalised vectors, averaged over channels:
``1/sqrt(D)`` when spread out, 0 when collapsed) and the effective rank (exp of the entropy of the
normalised singular values, 1 when collapsed) — in the step log (``train_log.jsonl``) too.

The EMA decay rises linearly from ``ema_decay`` to ``ema_end_decay`` over ``ema_anneal_end_step``
updates (BYOL: cosine from 0.996 to 1). The projectors and predictors are BYOL's MLPs (Linear →
BatchNorm → ReLU → Linear); the target heads normalise with their batch's statistics, as BYOL's.
The target sees the unmasked input (the online audio branch the masked one, see
:mod:`echoic.objectives.audio_text`).

The exported joint space (``joint_space``): ``cross`` (default) compares the audio *prediction*
``q_a(g_a(a))`` with the text *projection* ``g_t(t)`` — the pairing the loss trains (the target
projection is an average of the online one); ``projection`` compares ``g_a(a)`` with ``g_t(t)``.

Differences from SLAP: the intra-modal term is off by default (``intra_weight: 0``; SLAP weighs
both kinds of term); SLAP's towers are HTS-AT and RoBERTa, trained; here any echoic encoder from
scratch and a registered text tower, frozen by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from echoic.encoders.base import Encoder
from echoic.errors import ConfigError
from echoic.objectives.audio_text import AudioTextConfig, AudioTextObjective
from echoic.objectives.base import AnnealedEmaTeacher, frozen_copy, register
from echoic.objectives.byol_a import batch_statistics, collapse_metrics
from echoic.objectives.joint import Head
from echoic.types import ObjectiveOutput, TrainBatch

__all__ = ["SlapObjective", "SlapObjectiveConfig", "normalised_mse"]

SPACES = ("cross", "projection")


@dataclass
class SlapObjectiveConfig(AudioTextConfig):
    """Settings of :class:`SlapObjective` (and :class:`~.audio_text.AudioTextConfig`'s).

    dim / hidden: the projections' width and the MLPs' hidden width (BYOL: 256 / 4096).
    ema_decay → ema_end_decay over ema_anneal_end_step updates. intra_weight: weight of the
    within-modality terms. collapse_every: optimiser steps between collapse logs.
    joint_space: ``cross`` | ``projection`` (module docstring).
    """

    dim: int = 256
    hidden: int = 1024
    ema_decay: float = 0.99
    ema_end_decay: float = 0.999
    ema_anneal_end_step: int = 10_000
    intra_weight: float = 0.0
    collapse_every: int = 10
    joint_space: str = "cross"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dim < 1 or self.hidden < 1:
            raise ConfigError(f"slap dim and hidden must be >= 1; found {self.dim}, {self.hidden}.")
        if not 0.0 <= self.ema_decay <= self.ema_end_decay <= 1.0:
            raise ConfigError(
                "slap needs 0 <= ema_decay <= ema_end_decay <= 1; found "
                f"{self.ema_decay}, {self.ema_end_decay}."
            )
        if self.intra_weight < 0 or self.collapse_every < 1:
            raise ConfigError("slap needs intra_weight >= 0 and collapse_every >= 1.")
        if self.joint_space not in SPACES:
            raise ConfigError(
                f"slap joint_space must be one of {SPACES}; found {self.joint_space!r}."
            )


def normalised_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``(B,)`` ``‖p/‖p‖ − z/‖z‖‖² = 2 − 2 cos(p, z)`` per row."""
    return 2.0 - 2.0 * F.cosine_similarity(prediction.float(), target.float(), dim=-1)


@register("slap")
class SlapObjective(AnnealedEmaTeacher, AudioTextObjective):
    """BYOL-style audio ↔ text prediction with EMA targets, no negatives (module docstring)."""

    config_class = SlapObjectiveConfig

    def __init__(self, encoder: Encoder, config: SlapObjectiveConfig) -> None:
        super().__init__(encoder, config)
        width, text_dim, dim, hidden = (
            encoder.spec.width,
            self.text_tower.dim,
            config.dim,
            config.hidden,
        )
        self.audio_projector = Head([width, hidden, dim], norm="batch")
        self.audio_predictor = Head([dim, hidden, dim], norm="batch")
        self.text_projector = Head([text_dim, hidden, dim], norm="batch")
        self.text_predictor = Head([dim, hidden, dim], norm="batch")
        self.ema = cast(nn.ModuleDict, frozen_copy(self.ema_source()))
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
        self._collapse: dict[str, float] = {}

    def ema_source(self) -> nn.ModuleDict:
        """The online modules the targets follow (the text tower only when it trains)."""
        parts: dict[str, nn.Module] = {
            "encoder": self.encoder,
            "audio_projector": self.audio_projector,
            "text_projector": self.text_projector,
        }
        if self.text_tower.trainable:
            parts["text_tower"] = self.text_tower
        return nn.ModuleDict(parts)

    @torch.no_grad()
    def after_optimizer_step(self) -> dict[str, float]:
        logs = super().after_optimizer_step()
        logs.update(self._collapse)  # into the step log: the collapse check over training
        self._collapse = {}
        return logs

    def forward(self, batch: TrainBatch, generator: torch.Generator) -> ObjectiveOutput:
        tokens = self.tokens(batch)
        pooled = self.pooled(self.encoder(self.audio_input(batch, generator)))
        text_in = self.text_vectors(self.text_tower, tokens)
        za, zt = self.audio_projector(pooled), self.text_projector(text_in)
        qa, qt = self.audio_predictor(za), self.text_predictor(zt)
        ema = self.ema
        with torch.no_grad(), batch_statistics(ema):
            target_a = ema["audio_projector"](self.pooled(ema["encoder"](batch.features)))
            tower = ema["text_tower"] if "text_tower" in ema else self.text_tower
            target_t = ema["text_projector"](self.text_vectors(tower, tokens))
        cross = (normalised_mse(qa, target_t) + normalised_mse(qt, target_a)).mean()
        loss = cross
        logs = {"cross_loss": float(cross.detach())}
        if self.config.intra_weight > 0:
            intra = (normalised_mse(qa, target_a) + normalised_mse(qt, target_t)).mean()
            loss = loss + self.config.intra_weight * intra
            logs["intra_loss"] = float(intra.detach())
        if int(self.num_updates) % self.config.collapse_every == 0:
            joint_audio = qa if self.config.joint_space == "cross" else za
            self._collapse = self.collapse_logs(
                {"audio": pooled, "text": text_in, "joint_audio": joint_audio, "joint_text": zt}
            )
            logs.update(self._collapse)
        return ObjectiveOutput(loss=loss, logs=logs)

    @staticmethod
    def collapse_logs(vectors: dict[str, torch.Tensor]) -> dict[str, float]:
        """``{name}_std`` and ``{name}_rank`` of each ``(B, D)`` set of vectors."""
        logs = {}
        for name, v in vectors.items():
            std, rank = collapse_metrics(v)
            logs[f"{name}_std"], logs[f"{name}_rank"] = std, rank
        return logs

    def joint_heads(self) -> tuple[nn.Sequential, nn.Sequential, dict[str, Any]]:
        if self.config.joint_space == "cross":
            audio = nn.Sequential(self.audio_projector, self.audio_predictor)
        else:
            audio = nn.Sequential(self.audio_projector)
        return audio, nn.Sequential(self.text_projector), {"joint_space": self.config.joint_space}
