"""CLAP: contrastive language–audio pretraining (Elizalde et al. 2023; LAION-CLAP, Wu et al. 2023).

Each clip's pooled audio embedding and its caption's text embedding go through a projection head
each (Linear → ReLU → Linear into a ``dim``-wide joint space, as LAION-CLAP's), are
L2-normalised, and the batch's ``B × B`` cosine similarities scaled by a learned inverse
temperature ``exp(t)`` are the logits of a symmetric InfoNCE (CLIP's loss)::

    loss = ½ [ CE(S, arange(B)) + CE(Sᵀ, arange(B)) ],   S = exp(t) · A Tᵀ

``t`` starts at ``log(1 / 0.07)`` and is clamped to ``[0, log(max_logit_scale)]`` (100: CLIP,
LAION-CLAP): the forward uses the clamped value and, after every optimiser step, the parameter
itself is clamped in place as CLIP's training loop does. Captions that are the same text within a
batch are not negatives of each other (their off-diagonal logits are masked), since with
template captions ("rain ambience") two clips of a batch often share one.

Differences from the papers: the audio encoder is any echoic encoder (pooled last layer, see
:mod:`echoic.objectives.audio_text`) trained from scratch, with light input masking; the text tower
is a registered echoic tower, frozen by default (``text: minilm``); no feature fusion of long clips
(LAION-CLAP) — crops are ``data.crop_s`` long; the batch's negatives only (no memory queue).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from echoic.encoders.base import Encoder
from echoic.errors import ConfigError
from echoic.objectives.audio_text import (
    AudioTextConfig,
    AudioTextObjective,
    pair_top1,
    symmetric_cross_entropy,
)
from echoic.objectives.base import register
from echoic.objectives.byol_a import collapse_metrics
from echoic.objectives.joint import NORMS, Head
from echoic.types import ObjectiveOutput, TrainBatch

__all__ = ["ClapObjective", "ClapObjectiveConfig", "info_nce", "same_caption"]


@dataclass
class ClapObjectiveConfig(AudioTextConfig):
    """Settings of :class:`ClapObjective` (and :class:`~.audio_text.AudioTextConfig`'s).

    dim / hidden: the joint space's width and the heads' hidden width (LAION-CLAP: 512 / 512).
    init_temperature: the starting temperature (CLIP: 0.07). max_logit_scale: the clamp of
    ``exp(t)`` (CLIP: 100). mask_same_captions: identical captions are not negatives.
    head_norm: the norm between the heads' two layers (:class:`~.joint.Head`): ``none``
    (LAION-CLAP), ``batch`` or ``layer``. ``batch`` takes out what every clip (caption) of the
    batch shares, which dominates the pooled vectors of a frozen pretrained tower (cosine
    0.90-0.99 between 10-s excerpts of different music renders through echoic-tiny).
    """

    dim: int = 512
    hidden: int = 512
    init_temperature: float = 0.07
    max_logit_scale: float = 100.0
    mask_same_captions: bool = True
    head_norm: str = "none"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.head_norm not in NORMS:
            raise ConfigError(f"clap head_norm must be one of {NORMS}; found {self.head_norm!r}.")
        if self.dim < 1 or self.hidden < 1:
            raise ConfigError(f"clap dim and hidden must be >= 1; found {self.dim}, {self.hidden}.")
        if not (
            self.init_temperature > 0 and 1.0 <= 1.0 / self.init_temperature <= self.max_logit_scale
        ):
            raise ConfigError(
                "clap needs 1 / max_logit_scale <= init_temperature <= 1; found "
                f"{self.init_temperature} with max_logit_scale {self.max_logit_scale}."
            )


def same_caption(tokens: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
    """``(B, B)`` bool: items whose token rows are identical (padding ignored)."""
    ids = tokens.masked_fill(padding, -1)
    return (ids[:, None, :] == ids[None, :, :]).all(-1)


def info_nce(
    audio: torch.Tensor,
    text: torch.Tensor,
    logit_scale: torch.Tensor,
    not_negative: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric InfoNCE of L2-normalised ``(B, D)`` audio and text vectors (pair i ↔ i).

    ``not_negative`` ``(B, B)`` marks off-diagonal pairs left out of the softmax. Returns the
    loss and the ``(B, B)`` logits ``logit_scale · audio textᵀ``.
    """
    logits = logit_scale * audio @ text.t()
    return symmetric_cross_entropy(logits, not_negative), logits


@register("clap")
class ClapObjective(AudioTextObjective):
    """Symmetric InfoNCE between projected audio and caption embeddings (module docstring)."""

    config_class = ClapObjectiveConfig

    def __init__(self, encoder: Encoder, config: ClapObjectiveConfig) -> None:
        super().__init__(encoder, config)
        width, text_dim = encoder.spec.width, self.text_tower.dim
        self.audio_head = Head([width, config.hidden, config.dim], norm=config.head_norm)
        self.text_head = Head([text_dim, config.hidden, config.dim], norm=config.head_norm)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / config.init_temperature)))

    @property
    def max_log_scale(self) -> float:
        return math.log(self.config.max_logit_scale)

    def scale(self) -> torch.Tensor:
        """``exp(t)`` with ``t`` clamped to ``[0, log(max_logit_scale)]``."""
        return self.logit_scale.clamp(0.0, self.max_log_scale).exp()

    @torch.no_grad()
    def after_optimizer_step(self) -> dict[str, float]:
        self.logit_scale.clamp_(0.0, self.max_log_scale)  # CLIP clamps the parameter itself
        return {}

    def joint_pair(
        self, batch: TrainBatch, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Unit audio and text vectors of the batch in the joint space, and the same-caption mask
        (None unless ``mask_same_captions``)."""
        tokens = self.tokens(batch)
        pooled = self.pooled(self.encoder(self.audio_input(batch, generator)))
        audio = F.normalize(self.audio_head(pooled).float(), dim=-1)
        text = F.normalize(
            self.text_head(self.text_vectors(self.text_tower, tokens)).float(), dim=-1
        )
        same = (
            same_caption(tokens.input_ids, tokens.padding_mask)
            if self.config.mask_same_captions
            else None
        )
        return audio, text, same

    def forward(self, batch: TrainBatch, generator: torch.Generator) -> ObjectiveOutput:
        audio, text, same = self.joint_pair(batch, generator)
        scale = self.scale()
        loss, logits = info_nce(audio, text, scale, same)
        with torch.no_grad():
            accuracy = pair_top1(logits)
            a_std, a_rank = collapse_metrics(audio)
            t_std, t_rank = collapse_metrics(text)
        return ObjectiveOutput(
            loss=loss,
            logs={
                "clap_loss": float(loss.detach()),
                "logit_scale": float(scale.detach()),
                "audio_to_text_top1": accuracy,
                "audio_std": a_std,
                "audio_rank": a_rank,
                "text_std": t_std,
                "text_rank": t_rank,
            },
        )

    def joint_heads(self) -> tuple[nn.Sequential, nn.Sequential, dict[str, Any]]:
        return (
            nn.Sequential(self.audio_head),
            nn.Sequential(self.text_head),
            {"logit_scale": float(self.scale().detach())},
        )
