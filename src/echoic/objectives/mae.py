"""Masked autoencoder (``mae``): He et al. 2022, Audio-MAE (Huang et al. 2022).

The student encoder sees only the visible tokens (token dropping). A light transformer decoder
gets the encoded visible tokens back in grid order, a learned mask token at every hidden position,
fixed 2-D sin-cos positions, and predicts the pixels of every patch; the loss is the mean squared
error on hidden patches, against targets normalised per patch (``norm_pix_loss``).

Defaults follow Audio-MAE's AudioSet recipe: unstructured random masking of 80% of the patches, a
512-wide, 8-block, 16-head decoder, normalised-pixel loss (AdamW, betas (0.9, 0.95), weight decay
1e-4, base lr 2e-4 per 256 clips, 3 warm-up epochs of 32: see ``configs/pretrain/mae_base.yaml``).
Audio-MAE's decoder uses shifted local (Swin-style) attention; this one uses global attention.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from echoic.encoders.base import Encoder, EncoderSpec
from echoic.layers import Block, gather_tokens, padding_to_attn_mask, sincos_grid
from echoic.masking import build_masker
from echoic.objectives.base import (
    Objective,
    masked_mean,
    register,
    require_keep_idx,
    token_padding,
)
from echoic.types import ObjectiveOutput, TrainBatch

__all__ = ["MAEConfig", "MAEObjective", "normalise_targets"]


@dataclass
class MAEConfig:
    """Settings of :class:`MAEObjective` (Audio-MAE defaults).

    mask / mask_ratio / mask_options: sampler name in :mod:`echoic.masking` and its options.
    decoder_dim / decoder_depth / decoder_heads: the decoder transformer (width divisible by 4).
    norm_pix_loss: normalise each target patch to zero mean, unit variance.
    """

    mask: str = "random"
    mask_ratio: float = 0.8
    mask_options: dict[str, Any] = field(default_factory=dict)
    decoder_dim: int = 512
    decoder_depth: int = 8
    decoder_heads: int = 16
    decoder_mlp_ratio: float = 4.0
    norm_pix_loss: bool = True


def normalise_targets(target: torch.Tensor, normalise: bool) -> torch.Tensor:
    """``(B, N, P)`` token targets (``encoder.token_targets``), optionally normalised per token
    to zero mean and unit variance (``norm_pix_loss``)."""
    if normalise:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1e-6).sqrt()
    return target


@register("mae")
class MAEObjective(Objective):
    """Visible tokens → encoder → transformer decoder with mask tokens → hidden patch pixels."""

    config_class = MAEConfig

    @classmethod
    def check_encoder(cls, spec: EncoderSpec) -> None:
        require_keep_idx("mae", spec)

    def __init__(self, encoder: Encoder, config: MAEConfig) -> None:
        super().__init__(encoder, config)
        spec = encoder.spec
        dim = spec.width
        pixels = spec.token_input_size
        width = config.decoder_dim
        self.masker = build_masker(config.mask, mask_ratio=config.mask_ratio, **config.mask_options)
        self.decoder_embed = nn.Linear(dim, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.decoder_blocks = nn.ModuleList(
            Block(width, config.decoder_heads, mlp_ratio=config.decoder_mlp_ratio)
            for _ in range(config.decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(width, eps=1e-6)
        self.decoder_pred = nn.Linear(width, pixels)
        for module in [self.decoder_embed, self.decoder_pred, *self.decoder_blocks.modules()]:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.mask_token, std=0.02)

    def decode(
        self,
        visible: torch.Tensor,
        cls: torch.Tensor | None,
        keep_idx: torch.Tensor,
        grid: tuple[int, int],
        padding: torch.Tensor,
    ) -> torch.Tensor:
        """visible: ``(B, K, D)`` encoded kept tokens, cls: ``(B, D)`` or None, keep_idx ``(B, K)``,
        padding ``(B, N)``. Returns ``(B, N, P)`` predicted pixels of every patch."""
        batch, n_tokens = padding.shape
        x = self.decoder_embed(visible)  # (B, K, W)
        width = x.shape[-1]
        full = self.mask_token.to(x.dtype).expand(batch, n_tokens, width)
        full = torch.scatter(full, 1, keep_idx[:, :, None].expand(-1, -1, width), x)
        full = full + sincos_grid(grid[0], grid[1], width, device=x.device).to(x.dtype)
        pad = padding
        if cls is not None:
            full = torch.cat([self.decoder_embed(cls)[:, None], full], dim=1)
            pad = torch.cat([padding.new_zeros(batch, 1), padding], dim=1)
        full = self.run_decoder_blocks(full, pad, n_prefix=0 if cls is None else 1)
        out = self.decoder_pred(self.decoder_norm(full))
        return out[:, 1:] if cls is not None else out

    def run_decoder_blocks(
        self, tokens: torch.Tensor, padding: torch.Tensor, n_prefix: int
    ) -> torch.Tensor:
        """tokens: ``(B, n_prefix + N, W)`` (summary tokens first, then the grid in token order);
        padding: ``(B, n_prefix + N)``, True on padding keys. Global attention in every block."""
        attn_mask = padding_to_attn_mask(padding) if bool(padding.any()) else None
        for block in self.decoder_blocks:
            tokens = block(tokens, attn_mask)
        return tokens

    def forward(self, batch: TrainBatch, generator: torch.Generator) -> ObjectiveOutput:
        """Loss: mean over hidden, non-padding tokens of the squared error of their input values
        (``encoder.token_targets``: the patch pixels of a ViT, the samples of a waveform frame)."""
        features = batch.features
        values = features.values
        device = values.device
        grid = self.encoder.grid(features.n_frames)
        sample = self.masker(values.shape[0], grid, generator)
        keep_idx = sample.keep_idx.to(device)
        masked_idx = sample.masked_idx.to(device)
        out = self.encoder(features, keep_idx=keep_idx)
        cls = out.cls_layers[-1] if out.cls_layers is not None else None
        padding = token_padding(features, self.encoder)
        pred = self.decode(out.last, cls, keep_idx, grid, padding)  # (B, N, P)
        target = normalise_targets(self.encoder.token_targets(features), self.config.norm_pix_loss)
        error = (gather_tokens(pred, masked_idx) - gather_tokens(target, masked_idx)) ** 2
        valid = ~torch.gather(padding, 1, masked_idx)
        loss = masked_mean(error.mean(dim=-1), valid)
        return ObjectiveOutput(
            loss=loss,
            logs={
                "mse": float(loss.detach()),
                "masked_fraction": sample.n_masked / sample.masked.shape[1],
            },
        )
