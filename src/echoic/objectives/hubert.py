"""HuBERT masked prediction (``hubert``): Hsu et al. 2021, "HuBERT: Self-Supervised Speech
Representation Learning by Masked Prediction of Hidden Units".

Spans of the token sequence are hidden: every time step starts a span of ``mask_length`` steps
with probability ``mask_prob`` (fairseq: ``int(mask_prob * T + u)`` distinct starts, spans may
overlap), then every item of the batch keeps only as many hidden steps as the item with the
fewest (chosen at random), as fairseq does. Every token enters the encoder, hidden ones as one
learned mask embedding before the positions (BEiT-style; a waveform encoder's convolutional
positions run over the edited sequence). The output is projected to ``final_dim`` and scored
against one learned embedding per id by cosine similarity over ``logit_temperature``; the loss is
the cross-entropy of the hidden, non-padding tokens' ids plus ``unmasked_weight`` times that of the
visible ones (HuBERT: 0).

Targets (:mod:`echoic.objectives.discrete`): iteration 1 predicts k-means ids of MFCC frames
(``target_frames: mfcc``, ``tokenizer``: a k-means fitted on them), iteration 2 k-means ids of a
layer of the iteration-1 model (``target_frames: layer``, ``teacher``, ``teacher_layer``); both
as one recipe, ``configs/pretrain/hubert_iter.yaml`` (:mod:`echoic.train.stages`). Without a
``tokenizer`` the MFCC frames go through a seeded random-projection quantiser of
``codebook_size`` (100) codes instead (BEST-RQ-like), so a single run needs no fitted tokenizer.

Deviations from fairseq's HuBERT: MFCCs are computed with one window per token (the encoder's
receptive field, e.g. 25 ms every 20 ms) and normalised per clip (HuBERT: 25 ms windows every
10 ms, labels at 100 Hz for iteration 1, no normalisation); mask spans are drawn over each
item's valid steps and are at most half of them long (short crops are never hidden whole); no feature penalty (HuBERT: 10 × the L2 of the CNN features) and no
dropout of the encoder's input features. Works with every encoder family (2-D patch encoders hide
whole time columns).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from echoic.encoders.base import Encoder
from echoic.errors import ConfigError
from echoic.objectives.base import Objective, masked_mean, register, token_padding
from echoic.objectives.beats import masked_cross_entropy
from echoic.objectives.discrete import DiscreteTargets, DiscreteTargetsConfig, grid_time_index
from echoic.types import ObjectiveOutput, TrainBatch

__all__ = ["HubertConfig", "HubertObjective", "hubert_span_mask"]


@dataclass
class HubertConfig(DiscreteTargetsConfig):
    """Settings of :class:`HubertObjective` (HuBERT base defaults).

    mask_prob / mask_length: span starts per time step and span length (HuBERT: 8 %, 10).
    final_dim / logit_temperature: projection width and cosine temperature (256, 0.1).
    unmasked_weight: weight of the loss on visible tokens (HuBERT: 0).
    The target fields are :class:`~echoic.objectives.discrete.DiscreteTargetsConfig`'s.
    """

    target_frames: str = "mfcc"
    codebook_size: int = 100
    mask_prob: float = 0.08
    mask_length: int = 10
    final_dim: int = 256
    logit_temperature: float = 0.1
    unmasked_weight: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.mask_prob < 1.0 or self.mask_length < 1:
            raise ConfigError(
                "hubert needs 0 < mask_prob < 1 and mask_length >= 1; found "
                f"{self.mask_prob}, {self.mask_length}."
            )
        if self.logit_temperature <= 0:
            raise ConfigError(
                f"hubert.logit_temperature must be > 0; found {self.logit_temperature}."
            )


def hubert_span_mask(
    valid_steps: torch.Tensor,
    n_steps: int,
    mask_prob: float,
    mask_length: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """``(B, n_steps)`` bool: HuBERT / wav2vec 2.0 span masks, the same count in every row.

    Item ``b`` (``valid_steps[b]`` valid steps ``L``) draws ``int(mask_prob * L + u)`` (at least
    one) distinct span starts in ``[0, L - span]``, hides ``span`` steps from each, where ``span =
    min(mask_length, L // 2)`` (at least 1: a clip shorter than two spans is never hidden whole);
    then every row keeps a random subset of its hidden steps as large as the smallest row's."""
    batch = int(valid_steps.shape[0])
    masks = torch.zeros(batch, n_steps, dtype=torch.bool)
    for b, length in enumerate(valid_steps.tolist()):
        length = max(1, min(int(length), n_steps))
        span = max(1, min(mask_length, length // 2))
        u = float(torch.rand((), generator=generator))
        n_spans = max(1, int(mask_prob * length + u))
        n_starts = length - span + 1
        starts = torch.randperm(n_starts, generator=generator)[: min(n_spans, n_starts)]
        cover = (starts[:, None] + torch.arange(span)[None]).reshape(-1)
        masks[b, cover] = True
    fewest = int(masks.sum(1).min())
    out = torch.zeros_like(masks)
    for b in range(batch):
        hidden = masks[b].nonzero().squeeze(1)
        keep = hidden[torch.randperm(hidden.numel(), generator=generator)[:fewest]]
        out[b, keep] = True
    return out


@register("hubert")
class HubertObjective(Objective):
    """All tokens (hidden spans as a mask embedding) → encoder → cosine logits over id embeddings."""

    config_class = HubertConfig

    def __init__(self, encoder: Encoder, config: HubertConfig) -> None:
        super().__init__(encoder, config)
        spec = encoder.spec
        self.targets = DiscreteTargets(config, spec)
        sizes = self.targets.codebook_sizes
        if len(set(sizes)) != 1:
            raise ConfigError(
                f"hubert predicts codebooks of one size; the tokenizer has {sizes}. Use a "
                "tokenizer whose codebooks are all the same size."
            )
        self.n_codebooks, self.n_classes = len(sizes), sizes[0]
        self.mask_embedding = nn.Parameter(torch.empty(1, 1, spec.width).uniform_())
        self.final_proj = nn.Linear(spec.width, config.final_dim * self.n_codebooks)
        self.label_embeddings = nn.Parameter(
            torch.empty(self.n_codebooks, self.n_classes, config.final_dim).normal_()
        )

    def train(self, mode: bool = True) -> HubertObjective:
        super().train(mode)
        self.targets.train(False)
        return self

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """``(B, N, D)`` encoder outputs → ``(B, N, C, K)`` cosine logits / temperature."""
        proj = self.final_proj(hidden).reshape(*hidden.shape[:2], self.n_codebooks, -1)
        scores = torch.einsum(
            "bncd,ckd->bnck",
            F.normalize(proj.float(), dim=-1),
            F.normalize(self.label_embeddings.float(), dim=-1),
        )
        return scores / self.config.logit_temperature

    def forward(self, batch: TrainBatch, generator: torch.Generator) -> ObjectiveOutput:
        """Loss: cross-entropy of the hidden (and, weighted, visible) non-padding tokens' ids."""
        features = batch.features
        spec = self.encoder.spec
        device = features.values.device
        padding = token_padding(features, self.encoder)  # (B, N)
        grid = self.encoder.grid(features.n_frames)
        time_index = grid_time_index(spec, grid)
        step_padding = torch.ones(padding.shape[0], grid[1], dtype=torch.bool)
        step_padding[:, time_index] = padding.cpu()
        c = self.config
        steps = hubert_span_mask(
            (~step_padding).sum(1), grid[1], c.mask_prob, c.mask_length, generator
        )
        masked = steps[:, time_index].to(device)  # (B, N)
        ids = self.targets(features, self.encoder)  # (B, N, C)
        tokens, pad, grid = self.encoder.embed_tokens(features, add_positions=False)
        tokens = torch.where(masked[..., None], self.mask_embedding.to(tokens.dtype), tokens)
        tokens = self.encoder.add_positions(tokens, grid, pad)
        out = self.encoder.forward_tokens(tokens, pad, features)
        logits = self.logits(out.last)
        hidden_ce, accuracy = masked_cross_entropy(logits, ids, masked & ~padding)
        logs = {"masked_ce": float(hidden_ce.detach()), "masked_accuracy": float(accuracy)}
        loss = hidden_ce
        if c.unmasked_weight > 0:
            visible_ce, _ = masked_cross_entropy(logits, ids, ~masked & ~padding)
            loss = loss + c.unmasked_weight * visible_ce
            logs["unmasked_ce"] = float(visible_ce.detach())
        logs["masked_fraction"] = float(masked_mean(masked.float(), ~padding))
        return ObjectiveOutput(loss=loss, logs=logs)
