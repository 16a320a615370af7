"""BEATs masked audio modelling (``beats``): Chen et al. 2022, "BEATs: Audio Pre-Training with
Acoustic Tokenizers".

Random masking hides 75 % of the patches; the encoder sees only the visible ones (token dropping,
with their own grid positions). A light transformer **label predictor** gets the encoded visible
tokens and a learned mask token at every hidden position (sin-cos positions of the full grid) and
classifies each hidden patch into its acoustic tokenizer id; the loss is the cross-entropy over
the hidden, non-padding patches (averaged over codebooks when the tokenizer has several).

The tokenizer is frozen and comes from ``tokenizer`` (a fitted tokenizer directory: BEATs'
iteration 1+ acoustic tokenizer, ``beats_acoustic``) or, when None, a seeded random-projection
quantiser built in place (iteration 0). It reads each patch's input values (``target_frames:
patches``, BEATs' choice); see :mod:`echoic.objectives.discrete`. The whole iteration — iter 0 →
fit ``beats_acoustic`` on the iter-0 encoder → iter 1 — is one recipe,
``configs/pretrain/beats_iter.yaml`` (:mod:`echoic.train.stages`).

Any encoder that accepts kept-token indices works (the ``beats`` family, ``vit_*``, ``wav_*``).
BEATs' pretraining code was never released; choices not fixed by the paper: the predictor is
``predictor_depth`` pre-LN blocks of ``predictor_dim`` (default 2 × 768, 12 heads) with sin-cos
positions; iteration 0's codebook is 1024 codes of 16 dims (BEST-RQ), over patches as the
frontend normalises them (no further standardisation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from echoic.encoders.base import Encoder, EncoderSpec
from echoic.errors import ConfigError
from echoic.layers import Block, gather_tokens, padding_to_attn_mask, sincos_grid
from echoic.masking import build_masker
from echoic.objectives.base import (
    Objective,
    masked_mean,
    register,
    require_keep_idx,
    token_padding,
)
from echoic.objectives.discrete import DiscreteTargets, DiscreteTargetsConfig
from echoic.types import ObjectiveOutput, TrainBatch

__all__ = ["BeatsObjective", "BeatsObjectiveConfig", "masked_cross_entropy"]


@dataclass
class BeatsObjectiveConfig(DiscreteTargetsConfig):
    """Settings of :class:`BeatsObjective` (BEATs defaults where the paper gives them).

    mask / mask_ratio / mask_options: sampler in :mod:`echoic.masking` (BEATs: random, 75 %).
    predictor_dim / predictor_depth / predictor_heads: the label predictor transformer.
    label_smoothing: of the cross-entropy (BEATs: none).
    The target fields (``tokenizer``, ``target_frames``, ...) are
    :class:`~echoic.objectives.discrete.DiscreteTargetsConfig`'s.
    """

    mask: str = "random"
    mask_ratio: float = 0.75
    mask_options: dict[str, Any] = field(default_factory=dict)
    predictor_dim: int = 768
    predictor_depth: int = 2
    predictor_heads: int = 12
    predictor_mlp_ratio: float = 4.0
    label_smoothing: float = 0.0


def masked_cross_entropy(
    logits: torch.Tensor, ids: torch.Tensor, valid: torch.Tensor, label_smoothing: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """logits ``(B, M, C, K)``, ids ``(B, M, C)``, valid ``(B, M)`` → (mean cross-entropy over
    valid positions and codebooks, top-1 accuracy over the same)."""
    batch, positions, books, classes = logits.shape
    flat = logits.float().reshape(-1, classes)
    ce = F.cross_entropy(
        flat, ids.reshape(-1), reduction="none", label_smoothing=label_smoothing
    ).reshape(batch, positions, books)
    correct = (logits.argmax(-1) == ids).float()
    return masked_mean(ce.mean(-1), valid), masked_mean(correct.mean(-1), valid)


@register("beats")
class BeatsObjective(Objective):
    """Visible patches → encoder → label predictor with mask tokens → tokenizer ids (CE)."""

    config_class = BeatsObjectiveConfig

    @classmethod
    def check_encoder(cls, spec: EncoderSpec) -> None:
        require_keep_idx("beats", spec)

    def __init__(self, encoder: Encoder, config: BeatsObjectiveConfig) -> None:
        super().__init__(encoder, config)
        spec = encoder.spec
        width = config.predictor_dim
        self.masker = build_masker(config.mask, mask_ratio=config.mask_ratio, **config.mask_options)
        self.targets = DiscreteTargets(config, spec)
        self.predictor_embed = nn.Linear(spec.width, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.predictor_blocks = nn.ModuleList(
            Block(width, config.predictor_heads, mlp_ratio=config.predictor_mlp_ratio)
            for _ in range(config.predictor_depth)
        )
        self.predictor_norm = nn.LayerNorm(width, eps=1e-6)
        sizes = self.targets.codebook_sizes
        if len(set(sizes)) != 1:
            raise ConfigError(
                f"beats predicts codebooks of one size; the tokenizer has {sizes}. Use a "
                "tokenizer whose codebooks are all the same size."
            )
        self.n_codebooks, self.n_classes = len(sizes), sizes[0]
        self.head = nn.Linear(width, self.n_codebooks * self.n_classes)
        for module in [self.predictor_embed, self.head, *self.predictor_blocks.modules()]:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.mask_token, std=0.02)

    def train(self, mode: bool = True) -> BeatsObjective:
        super().train(mode)
        self.targets.train(False)
        return self

    def predict(
        self,
        visible: torch.Tensor,
        keep_idx: torch.Tensor,
        masked_idx: torch.Tensor,
        grid: tuple[int, int],
        padding: torch.Tensor,
    ) -> torch.Tensor:
        """visible ``(B, K, D)`` encoded kept tokens → logits ``(B, M, C, K_c)`` at the hidden
        tokens ``masked_idx``; padding ``(B, N)``."""
        batch, n_tokens = padding.shape
        x = self.predictor_embed(visible)
        width = x.shape[-1]
        full = self.mask_token.to(x.dtype).expand(batch, n_tokens, width)
        full = torch.scatter(full, 1, keep_idx[:, :, None].expand(-1, -1, width), x)
        full = full + sincos_grid(grid[0], grid[1], width, device=x.device).to(x.dtype)
        attn_mask = padding_to_attn_mask(padding) if bool(padding.any()) else None
        for block in self.predictor_blocks:
            full = block(full, attn_mask)
        hidden = self.predictor_norm(gather_tokens(full, masked_idx))
        logits = self.head(hidden)
        return logits.reshape(*hidden.shape[:2], self.n_codebooks, self.n_classes)

    def forward(self, batch: TrainBatch, generator: torch.Generator) -> ObjectiveOutput:
        """Loss: cross-entropy of the tokenizer ids of the hidden, non-padding tokens."""
        features = batch.features
        device = features.values.device
        grid = self.encoder.grid(features.n_frames)
        sample = self.masker(features.values.shape[0], grid, generator)
        keep_idx = sample.keep_idx.to(device)
        masked_idx = sample.masked_idx.to(device)
        ids = self.targets(features, self.encoder)  # (B, N, C)
        out = self.encoder(features, keep_idx=keep_idx)
        padding = token_padding(features, self.encoder)
        logits = self.predict(out.last, keep_idx, masked_idx, grid, padding)
        valid = ~torch.gather(padding, 1, masked_idx)
        target = torch.gather(ids, 1, masked_idx[:, :, None].expand(-1, -1, ids.shape[-1]))
        loss, accuracy = masked_cross_entropy(logits, target, valid, self.config.label_smoothing)
        return ObjectiveOutput(
            loss=loss,
            logs={
                "ce": float(loss.detach()),
                "accuracy": float(accuracy),
                "masked_fraction": sample.n_masked / sample.masked.shape[1],
            },
        )
