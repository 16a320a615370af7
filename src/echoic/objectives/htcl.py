"""HTCL: hierarchical two-stage contrastive learning (Pan et al., ICMR 2025).

Stage 1 (``stage: 1``) learns the semantic space: ``clap``'s symmetric InfoNCE between audio
and caption embeddings. Stage 2 (``stage: 2``) starts from the stage-1 export (``init``: its
model directory, ``"stage:stage1"`` in a recipe's ``stages:``) and adds a contrast between clips
that *co-occur* — HTCL's user-preference pairs (songs one user liked), here clips that share a
``group`` (one Tux Paint stamp: its sound effect and spoken descriptions; one soundfont note set)
or a ``source`` (one corpus source / sound pack) in ``captions.csv`` (``cooccur``). It is a
supervised-contrastive term (Khosla et al. 2020) on the joint-space audio vectors: for every
anchor ``i`` with at least one positive in the batch,

    ℓ_i = − mean_{p ∈ P(i)} log [ exp(a_i·a_p / τ) / Σ_{j ≠ i} exp(a_i·a_j / τ) ]

and the stage-2 loss is ``(1 − cooccur_weight) · InfoNCE + cooccur_weight · mean_i ℓ_i`` — the
audio–text term keeps the semantic space while the co-occurrence term bends it (HTCL's aim of
"preserving the integrity" of the semantic space). A batch whose clips share no group gives a
zero co-occurrence term (logged as ``cooccur_anchors: 0``).

The co-occurrence ids come with the paired batch (``TrainBatch.groups``: column 0 the clip's
``group``, column 1 its ``source``; see :mod:`echoic.train.paired`).

Differences from the paper: no user-interaction logs exist offline, so co-occurrence stands in
for preference; HTCL fine-tunes on explicit (anchor, positive) song pairs with in-batch negatives,
echoic takes every same-group clip of a random batch as a positive (no group-aware sampler);
the audio encoder is any echoic encoder and the text tower a registered one (HTCL: a CNN +
Transformer audio encoder, multilingual BERT).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from echoic.checkpoint import load_dir
from echoic.encoders.base import Encoder
from echoic.errors import ConfigError
from echoic.objectives.audio_text import pair_top1
from echoic.objectives.base import register
from echoic.objectives.clap import ClapObjective, ClapObjectiveConfig, info_nce
from echoic.objectives.joint import HEADS_FILE, JOINT_FILE, is_joint_model
from echoic.types import ObjectiveOutput, TrainBatch

__all__ = ["COOCCUR_KEYS", "HtclConfig", "HtclObjective", "cooccurrence_mask", "supcon"]

COOCCUR_KEYS = ("group", "source")


@dataclass
class HtclConfig(ClapObjectiveConfig):
    """Settings of :class:`HtclObjective` (and ``clap``'s; module docstring).

    stage: 1 (audio–text only) or 2 (plus co-occurrence). init: stage 2's starting point, a
    ``clap``/``htcl`` export (encoder, heads, temperature; a trainable text tower too).
    cooccur: ``group`` or ``source``. cooccur_weight: the co-occurrence term's share in stage 2.
    cooccur_temperature: τ of that term (SupCon: 0.1).
    """

    stage: int = 1
    init: str | None = None
    cooccur: str = "group"
    cooccur_weight: float = 0.5
    cooccur_temperature: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.stage not in (1, 2):
            raise ConfigError(f"htcl stage must be 1 or 2; found {self.stage}.")
        if self.cooccur not in COOCCUR_KEYS:
            raise ConfigError(
                f"htcl cooccur must be one of {COOCCUR_KEYS}; found {self.cooccur!r}."
            )
        if not 0.0 <= self.cooccur_weight <= 1.0 or self.cooccur_temperature <= 0:
            raise ConfigError(
                "htcl needs 0 <= cooccur_weight <= 1 and cooccur_temperature > 0; found "
                f"{self.cooccur_weight}, {self.cooccur_temperature}."
            )


def cooccurrence_mask(ids: torch.Tensor) -> torch.Tensor:
    """``(B, B)`` bool: items ``i ≠ j`` with the same id (``ids`` ``(B,)``)."""
    same = ids[:, None] == ids[None, :]
    return same & ~torch.eye(len(ids), dtype=torch.bool, device=ids.device)


def supcon(
    vectors: torch.Tensor, positives: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, int]:
    """Supervised-contrastive loss of L2-normalised ``(B, D)`` vectors over the anchors that
    have a positive (module docstring), and how many anchors had one (0: the loss is 0)."""
    anchors = positives.any(1)
    count = int(anchors.sum())
    if count == 0:
        return vectors.sum() * 0.0, 0
    eye = torch.eye(len(vectors), dtype=torch.bool, device=vectors.device)
    logits = (vectors @ vectors.t() / temperature).masked_fill(eye, float("-inf"))
    log_prob = logits.log_softmax(1).masked_fill(eye, 0.0)
    pos = positives.to(log_prob.dtype)
    per_anchor = -(log_prob * pos).sum(1) / pos.sum(1).clamp_min(1)
    return per_anchor[anchors].mean(), count


@register("htcl")
class HtclObjective(ClapObjective):
    """Stage 1: ``clap``; stage 2: ``clap`` mixed with co-occurrence contrast (module docstring)."""

    config_class = HtclConfig

    def __init__(self, encoder: Encoder, config: HtclConfig) -> None:
        super().__init__(encoder, config)
        if config.init is not None:
            self._start_from(Path(config.init))
        elif config.stage == 2:
            raise ConfigError(
                "htcl stage 2 fine-tunes a stage-1 model: set init to its model directory "
                "(in a recipe's stages: init: stage:stage1)."
            )

    def _start_from(self, directory: Path) -> None:
        if not is_joint_model(directory):
            raise ConfigError(
                f"htcl init {str(directory)!r}: expected a model exported by clap or htcl "
                f"(a folder with {JOINT_FILE}); train stage 1 first."
            )
        given = load_dir(directory).encoder
        mine, theirs = self.encoder.state_dict(), given.state_dict()
        if mine.keys() != theirs.keys() or any(mine[k].shape != theirs[k].shape for k in mine):
            raise ConfigError(
                f"htcl init {str(directory)!r} has another encoder than this recipe's; use the "
                "stage-1 recipe's model section."
            )
        self.encoder.load_state_dict(theirs)
        heads = load_file(str(directory / HEADS_FILE))
        for prefix, head in (("audio.", self.audio_head), ("text.", self.text_head)):
            nn.Sequential(head).load_state_dict(  # saved as joint_heads()'s Sequential
                {k[len(prefix) :]: v for k, v in heads.items() if k.startswith(prefix)}
            )
        meta = json.loads((directory / JOINT_FILE).read_text())
        with torch.no_grad():
            self.logit_scale.fill_(float(torch.tensor(meta["logit_scale"]).log()))
        if any(p.requires_grad for p in self.text_tower.parameters()):
            from echoic.text import load_text_tower

            self.text_tower.load_state_dict(load_text_tower(directory).state_dict())

    def forward(self, batch: TrainBatch, generator: torch.Generator) -> ObjectiveOutput:
        audio, text, same = self.joint_pair(batch, generator)
        scale = self.scale()
        semantic, logits = info_nce(audio, text, scale, same)
        logs: dict[str, float] = {"semantic_loss": float(semantic.detach())}
        loss = semantic
        if self.config.stage == 2:
            if batch.groups is None:
                raise ConfigError(
                    "htcl stage 2 needs the clips' co-occurrence ids (TrainBatch.groups); train "
                    "it with data.captions: true (echoic.train.paired adds them)."
                )
            column = COOCCUR_KEYS.index(self.config.cooccur)
            ids = batch.groups.to(audio.device)[batch.clip_index.to(audio.device), column]
            cooccur, anchors = supcon(
                audio, cooccurrence_mask(ids), self.config.cooccur_temperature
            )
            w = self.config.cooccur_weight
            loss = (1.0 - w) * semantic + w * cooccur
            logs.update(cooccur_loss=float(cooccur.detach()), cooccur_anchors=float(anchors))
        with torch.no_grad():
            logs["audio_to_text_top1"] = pair_top1(logits)
        logs.update(htcl_loss=float(loss.detach()), logit_scale=float(scale.detach()))
        return ObjectiveOutput(loss=loss, logs=logs)

    def joint_heads(self) -> tuple[Any, Any, dict[str, Any]]:
        audio, text, extra = super().joint_heads()
        return audio, text, {**extra, "stage": self.config.stage}
