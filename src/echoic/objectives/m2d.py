"""Masked Modeling Duo (``m2d``): Niizumi et al. 2023 (IEEE/ACM TASLP 2024).

The input's patches are split in two by one random mask. The **online** encoder (the student,
exported) sees only the visible patches (token dropping); a transformer **predictor** gets its
outputs back in grid order with a learned mask token at every hidden position and fixed 2-D
sin-cos positions, and predicts, at the hidden positions, the representation that an EMA
**target** encoder gives when it is fed **only the hidden patches** (token dropping again, with
their own positions). Unlike data2vec / EAT, the target never sees the visible part, so the two
halves of the input carry no shared information the predictor could copy. The loss is
``2 − 2 cos(prediction, target)`` per hidden patch (the MSE of the L2-normalised vectors), averaged
over hidden patches that are not padding.

Defaults follow the paper's audio recipe (M2D, AudioSet, ViT-Base, 16 × 16 patches of an
80 × 608 log-mel): random masking of 70 % of the patches, a 512-wide, 8-block, 16-head predictor,
the target's final (normalised) layer, EMA decay 0.99995 → 0.99999 annealed over training
(AdamW, weight decay 0.05, base lr 3e-4 per 256 clips, 20 warm-up epochs of 300). The exported
model recommends M2D's frame embedding — the frequency tokens of each time step concatenated
(``freq_pool="concat"``, :attr:`M2DObjective.embed_defaults`).

Differences from the released code: the EMA target is a copy of the whole online encoder (the
same thing for a ViT); the decay is annealed linearly over ``ema_anneal_end_step`` updates (M2D
anneals over all of training); the predictor's positions are fixed sin-cos over the encoder's
grid whatever its flatten order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from echoic.encoders.base import Encoder, EncoderSpec
from echoic.errors import ConfigError
from echoic.layers import Block, gather_tokens, padding_to_attn_mask, sincos_grid
from echoic.masking import build_masker
from echoic.objectives.base import (
    AnnealedEmaTeacher,
    Objective,
    frozen_copy,
    masked_mean,
    register,
    require_keep_idx,
    token_padding,
)
from echoic.types import ObjectiveOutput, TrainBatch

__all__ = ["M2DConfig", "M2DObjective", "TokenPredictor", "cosine_distance", "grid_positions"]


@dataclass
class M2DConfig:
    """Settings of :class:`M2DObjective` (M2D paper defaults).

    mask / mask_ratio / mask_options: sampler name in :mod:`echoic.masking` and its options.
    predictor_dim / predictor_depth / predictor_heads: the predictor transformer (width
        divisible by 4 for its sin-cos positions).
    ema_decay → ema_end_decay: target EMA decay, annealed linearly over ``ema_anneal_end_step``.
    """

    mask: str = "random"
    mask_ratio: float = 0.7
    mask_options: dict[str, Any] = field(default_factory=dict)
    predictor_dim: int = 512
    predictor_depth: int = 8
    predictor_heads: int = 16
    predictor_mlp_ratio: float = 4.0
    ema_decay: float = 0.99995
    ema_end_decay: float = 0.99999
    ema_anneal_end_step: int = 100_000

    def __post_init__(self) -> None:
        if not 0.0 <= self.ema_decay <= self.ema_end_decay <= 1.0:
            raise ConfigError(
                f"m2d needs 0 <= ema_decay <= ema_end_decay <= 1; found {self.ema_decay}, "
                f"{self.ema_end_decay}."
            )
        if self.predictor_dim % 4 or self.predictor_dim % self.predictor_heads:
            raise ConfigError(
                f"m2d.predictor_dim={self.predictor_dim} must be a multiple of 4 (sin-cos "
                f"positions) and of predictor_heads={self.predictor_heads}."
            )


def grid_positions(
    spec: EncoderSpec, grid: tuple[int, int], width: int, device: torch.device
) -> torch.Tensor:
    """``(N, width)`` fixed 2-D sin-cos positions of a full ``grid`` in the encoder's token order."""
    table = sincos_grid(grid[0], grid[1], width, device=device)  # time-major
    if spec.flatten == "freq_major":
        n_freq, n_time = grid
        table = table.reshape(n_time, n_freq, width).transpose(0, 1).reshape(-1, width)
    return table


def cosine_distance(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``2 − 2 cos`` over the last axis: ``(..., D)`` → ``(...)``, in float32."""
    return 2.0 - 2.0 * F.cosine_similarity(pred.float(), target.float(), dim=-1)


class TokenPredictor(nn.Module):
    """MAE-style predictor: visible tokens + mask tokens on the full grid → every position.

    ``forward(visible (B, K, D), cls (B, D) | None, keep_idx (B, K), positions (N, W), padding
    (B, N))`` → ``(B, N, out_dim)``.
    """

    def __init__(
        self, dim: int, width: int, depth: int, heads: int, mlp_ratio: float, out_dim: int
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(dim, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio=mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.out = nn.Linear(width, out_dim)
        for module in [self.embed, self.out, *self.blocks.modules()]:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(
        self,
        visible: torch.Tensor,
        cls: torch.Tensor | None,
        keep_idx: torch.Tensor,
        positions: torch.Tensor,
        padding: torch.Tensor,
    ) -> torch.Tensor:
        batch, n_tokens = padding.shape
        x = self.embed(visible)
        width = x.shape[-1]
        full = self.mask_token.to(x.dtype).expand(batch, n_tokens, width)
        full = torch.scatter(full, 1, keep_idx[:, :, None].expand(-1, -1, width), x)
        full = full + positions.to(x.dtype)
        pad = padding
        if cls is not None:
            full = torch.cat([self.embed(cls)[:, None], full], dim=1)
            pad = torch.cat([padding.new_zeros(batch, 1), padding], dim=1)
        attn_mask = padding_to_attn_mask(pad) if bool(pad.any()) else None
        for block in self.blocks:
            full = block(full, attn_mask)
        out = self.out(self.norm(full))
        return out[:, 1:] if cls is not None else out


@register("m2d")
class M2DObjective(AnnealedEmaTeacher, Objective):
    """Online encoder on the visible patches, EMA target on the hidden ones, predictor between."""

    config_class = M2DConfig
    embed_defaults: ClassVar[dict[str, Any]] = {"freq_pool": "concat"}

    @classmethod
    def check_encoder(cls, spec: EncoderSpec) -> None:
        require_keep_idx("m2d", spec)

    def __init__(self, encoder: Encoder, config: M2DConfig) -> None:
        super().__init__(encoder, config)
        dim = encoder.spec.width
        self.masker = build_masker(config.mask, mask_ratio=config.mask_ratio, **config.mask_options)
        self.ema = frozen_copy(encoder)
        self.predictor = TokenPredictor(
            dim,
            config.predictor_dim,
            config.predictor_depth,
            config.predictor_heads,
            config.predictor_mlp_ratio,
            dim,
        )
        self.num_updates: torch.Tensor
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.int64))

    def forward(self, batch: TrainBatch, generator: torch.Generator) -> ObjectiveOutput:
        """Loss: mean ``2 − 2 cos`` over hidden, non-padding patches."""
        features = batch.features
        device = features.values.device
        grid = self.encoder.grid(features.n_frames)
        sample = self.masker(features.values.shape[0], grid, generator)
        keep_idx = sample.keep_idx.to(device)
        masked_idx = sample.masked_idx.to(device)
        with torch.no_grad():
            self.ema.eval()
            target = self.ema(features, keep_idx=masked_idx).last  # (B, M, D)
        out = self.encoder(features, keep_idx=keep_idx)
        cls = out.cls_layers[-1] if out.cls_layers is not None else None
        padding = token_padding(features, self.encoder)
        positions = grid_positions(self.encoder.spec, grid, self.config.predictor_dim, device)
        pred = self.predictor(out.last, cls, keep_idx, positions, padding)  # (B, N, D)
        distance = cosine_distance(gather_tokens(pred, masked_idx), target)  # (B, M)
        valid = ~torch.gather(padding, 1, masked_idx)
        loss = masked_mean(distance, valid)
        return ObjectiveOutput(
            loss=loss,
            logs={
                "cos_distance": float(loss.detach()),
                "target_std": float(target.float().std(dim=0).mean())
                if target.shape[0] > 1
                else 0.0,
                "masked_fraction": sample.n_masked / sample.masked.shape[1],
            },
        )
