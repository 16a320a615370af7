"""WavJEPA (``wavjepa``): a joint-embedding predictive architecture on waveform latents
(Yuksel et al. 2025, after I-JEPA, Assran et al. 2023, and data2vec 2.0).

The encoder's convolutional front end turns the waveform into a 1-D sequence of local features
(one frame every 20 ms for ``wav_*``). Per item, one **context** (``context_ratio`` of the frames,
made of random spans of ``context_span``) and ``target_blocks`` **targets** (each
``target_ratio`` of the frames in spans of ``target_span``, drawn among the non-context frames;
targets may overlap each other, never the context) are sampled with exact counts.

* The student encodes the **context frames only** (token dropping). Non-context frames are
  zeroed before the encoder's positions are added, so a convolutional position embedding cannot
  carry target frames into the context.
* A narrow transformer **predictor** takes the context outputs (projected to its width, plus fixed
  1-D sin-cos positions) and, once per target block, a learned mask token at each target
  position (plus its position); each block is predicted separately, seeing the context and its
  own mask tokens only, and mapped back to the encoder width.
* The EMA **target encoder** runs the transformer on the student's local features of the full
  clip (WavJEPA shares the front end between the two); the targets are the average of its top
  ``average_top_k_layers`` block outputs, each instance-normalised over time per channel.
* The loss is the mean squared error (or smooth L1, ``loss="smooth_l1"``) between predictions
  and targets, averaged over channels and over every target position that is not padding.

Defaults follow the released WavJEPA code (AudioSet, 2-s crops at 16 kHz, ViT-B-sized encoder
on wav2vec 2.0's conv front end): four target blocks of spans of 10 frames, a 384-wide, 12-block,
12-head predictor, targets from the top 8 layers, EMA 0.999 → 0.99999 over 100k updates (AdamW
lr 4e-4, betas (0.9, 0.98), weight decay 0.01, 100k warm-up of 400k updates). Recipes:
``configs/pretrain/wavjepa_{test,tiny}.yaml``.

Differences from the released code: the masks have exact counts (it draws wav2vec 2.0 span masks
with probabilities 0.65 (context) and 0.25 (each target), removes the targets from the context
and redraws until at least 10 % of the frames are context: about 18 % context and 22 % per
target on average, which the defaults 0.2 / 0.2 approximate); the context is drawn first and the
targets outside it; the predictor attends over the context and one block's mask tokens (the
released code attends over the same set, through an attention mask on the full sequence); the
predictor blocks are pre-LN (released: post-LN); positions inside the encoder are its own
(convolutional for ``wav_*``; WavJEPA adds fixed sin-cos positions); the target encoder is an EMA
copy of the whole encoder of which only the positions and blocks run (its front end is the
student's, as in WavJEPA, but the positions are the EMA's); the top target layer is taken after
the encoder's final LayerNorm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from echoic.encoders.base import Encoder, EncoderSpec
from echoic.errors import ConfigError
from echoic.layers import Block, gather_tokens, padding_to_attn_mask, sincos_1d
from echoic.masking.base import arrival_priority, masked_count, rank_select
from echoic.masking.spans import span_positions
from echoic.objectives.base import (
    AnnealedEmaTeacher,
    Objective,
    frozen_copy,
    masked_mean,
    register,
    require_keep_idx,
)
from echoic.objectives.eat import layer_targets
from echoic.types import ObjectiveOutput, TrainBatch

__all__ = ["JEPAPredictor", "WavJEPAConfig", "WavJEPAObjective", "jepa_masks"]

LOSSES = ("mse", "smooth_l1")


@dataclass
class WavJEPAConfig:
    """Settings of :class:`WavJEPAObjective` (WavJEPA defaults).

    context_ratio / context_span: share of the frames the student sees, in spans of that length.
    target_blocks / target_ratio / target_span: target blocks per item, each that share of the
        frames in spans of that length (outside the context).
    predictor_dim / predictor_depth / predictor_heads: the predictor transformer (even width).
    loss: ``"mse"`` or ``"smooth_l1"`` (with ``smooth_l1_beta``).
    """

    context_ratio: float = 0.2
    context_span: int = 10
    target_blocks: int = 4
    target_ratio: float = 0.2
    target_span: int = 10
    predictor_dim: int = 384
    predictor_depth: int = 12
    predictor_heads: int = 12
    predictor_mlp_ratio: float = 4.0
    average_top_k_layers: int = 8
    instance_norm_target_layer: bool = True
    layer_norm_targets: bool = False
    loss: str = "mse"
    smooth_l1_beta: float = 1.0
    ema_decay: float = 0.999
    ema_end_decay: float = 0.99999
    ema_anneal_end_step: int = 100_000

    def __post_init__(self) -> None:
        for name in ("context_ratio", "target_ratio"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ConfigError(f"wavjepa.{name} must lie strictly in (0, 1); found {value}.")
        if self.context_ratio + self.target_ratio >= 1.0:
            raise ConfigError(
                f"wavjepa draws every target block outside the context, so context_ratio + "
                f"target_ratio must be < 1; found {self.context_ratio} + {self.target_ratio}."
            )
        if min(self.context_span, self.target_span, self.target_blocks) < 1:
            raise ConfigError(
                "wavjepa.context_span, target_span and target_blocks must be >= 1; found "
                f"{self.context_span}, {self.target_span}, {self.target_blocks}."
            )
        if self.predictor_dim % 2 or self.predictor_dim % self.predictor_heads:
            raise ConfigError(
                f"wavjepa.predictor_dim={self.predictor_dim} must be even (sin-cos positions) and "
                f"a multiple of predictor_heads={self.predictor_heads}."
            )
        if self.loss not in LOSSES:
            raise ConfigError(f"wavjepa.loss must be one of {LOSSES}; found {self.loss!r}.")
        if not 0.0 <= self.ema_decay <= self.ema_end_decay <= 1.0:
            raise ConfigError(
                f"wavjepa needs 0 <= ema_decay <= ema_end_decay <= 1; found {self.ema_decay}, "
                f"{self.ema_end_decay}."
            )


def jepa_masks(
    batch: int,
    n_time: int,
    n_context: int,
    n_target: int,
    blocks: int,
    context_span: int,
    target_span: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Context and target frames of every item, exact counts, drawn from ``generator`` (CPU).

    Returns ``context (B, T)`` bool with ``n_context`` True per row (random spans of
    ``context_span``) and ``targets (B, blocks, T)`` bool with ``n_target`` True per row, each made
    of random spans of ``target_span`` clipped to the non-context frames (random non-context
    frames complete a row whose spans fall short). Targets never touch the context.
    """
    if n_context + n_target > n_time:
        raise ConfigError(
            f"{n_time} frames cannot hold a context of {n_context} and disjoint targets of "
            f"{n_target}; use longer crops or smaller context_ratio / target_ratio."
        )
    context = span_positions(batch, n_time, n_context, context_span, generator)
    span = max(1, min(target_span, n_time))
    n_spans = math.ceil(3 * n_target / span) + 4
    start = torch.randint(0, n_time, (batch * blocks, n_spans, 1), generator=generator)
    position = torch.arange(n_time)[None, None]
    cover = (position >= start) & (position < start + span)  # (B * blocks, S, T)
    priority = arrival_priority(cover)  # >= 0; context frames go below every other frame
    priority = torch.where(context.repeat_interleave(blocks, dim=0), -1.0, priority)
    targets = rank_select(priority, n_target, generator)
    return context, targets.reshape(batch, blocks, n_time)


def true_indices(mask: torch.Tensor, count: int) -> torch.Tensor:
    """``(..., count)`` ascending indices of the True entries of ``mask (..., T)`` (exactly
    ``count`` per row)."""
    order = torch.argsort((~mask).to(torch.uint8), dim=-1, stable=True)
    return order[..., :count].contiguous()


class JEPAPredictor(nn.Module):
    """Context outputs + mask tokens at one target block's positions → predictions there.

    ``forward(context (B, K, D), context_index (B, K), context_padding (B, K), target_index
    (B, k, M), target_padding (B, k, M))`` → ``(B, k, M, D)``; each of the ``k`` blocks is a
    separate sequence ``[context, its M mask tokens]`` with fixed 1-D sin-cos positions.
    """

    def __init__(self, dim: int, width: int, depth: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.embed = nn.Linear(dim, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio=mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.out = nn.Linear(width, dim)
        for module in [self.embed, self.out, *self.blocks.modules()]:
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(
        self,
        context: torch.Tensor,
        context_index: torch.Tensor,
        context_padding: torch.Tensor,
        target_index: torch.Tensor,
        target_padding: torch.Tensor,
    ) -> torch.Tensor:
        batch, blocks, n_target = target_index.shape
        n_context = context.shape[1]
        x = self.embed(context)
        width = x.shape[-1]
        x = x + sincos_1d(context_index, width).to(x.dtype)
        queries = self.mask_token.to(x.dtype) + sincos_1d(
            target_index.reshape(batch * blocks, n_target), width
        ).to(x.dtype)
        x = torch.cat([x.repeat_interleave(blocks, dim=0), queries], dim=1)
        pad = torch.cat(
            [
                context_padding.repeat_interleave(blocks, dim=0),
                target_padding.reshape(batch * blocks, n_target),
            ],
            dim=1,
        )
        attn_mask = padding_to_attn_mask(pad) if bool(pad.any()) else None
        for block in self.blocks:
            x = block(x, attn_mask)
        out = self.out(self.norm(x[:, n_context:]))
        return out.reshape(batch, blocks, n_target, -1)


@register("wavjepa")
class WavJEPAObjective(AnnealedEmaTeacher, Objective):
    """Student on the context frames, predictor per target block, EMA layer-average targets."""

    config_class = WavJEPAConfig

    @classmethod
    def check_encoder(cls, spec: EncoderSpec) -> None:
        require_keep_idx("wavjepa", spec)
        if spec.layout != "frames":
            raise ConfigError(
                "wavjepa predicts blocks of a 1-D sequence of frame tokens; this encoder has 2-D "
                "patches. Use a waveform encoder (wav_test, wav_tiny) or, for spectrogram "
                "patches, m2d."
            )

    def __init__(self, encoder: Encoder, config: WavJEPAConfig) -> None:
        super().__init__(encoder, config)
        self.ema = cast(Encoder, frozen_copy(encoder))
        self.predictor = JEPAPredictor(
            encoder.spec.width,
            config.predictor_dim,
            config.predictor_depth,
            config.predictor_heads,
            config.predictor_mlp_ratio,
        )
        self.num_updates: torch.Tensor
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.int64))

    def forward(self, batch: TrainBatch, generator: torch.Generator) -> ObjectiveOutput:
        """Loss: mean error over channels and over the non-padding frames of every target block."""
        c = self.config
        features = batch.features
        local, pad, grid = self.encoder.embed_tokens(features, add_positions=False)  # (B, T, D)
        n_items, n_time, _ = local.shape
        n_context = masked_count(n_time, c.context_ratio)
        n_target = masked_count(n_time, c.target_ratio)
        context, targets = jepa_masks(
            n_items, n_time, n_context, n_target, c.target_blocks, c.context_span,
            c.target_span, generator,
        )  # fmt: skip
        context, targets = context.to(local.device), targets.to(local.device)

        with torch.no_grad():  # targets: the EMA transformer on the student's local features
            self.ema.eval()
            full = self.ema.add_positions(local.detach(), grid, pad)
            out = self.ema.forward_tokens(full, pad, features)
            k = min(c.average_top_k_layers, len(out.layers) - 1)
            target = layer_targets(
                out.layers[-k:], c.instance_norm_target_layer, c.layer_norm_targets
            )

        hidden = pad | ~context  # zeroed before the positions: nothing leaks into the context
        tokens = self.encoder.add_positions(local.masked_fill(hidden[..., None], 0.0), grid, hidden)
        context_index = true_indices(context, n_context)  # (B, K)
        context_padding = torch.gather(pad, 1, context_index)
        encoded = self.encoder.forward_tokens(
            gather_tokens(tokens, context_index), context_padding, features, context_index
        )
        target_index = true_indices(targets, n_target)  # (B, k, M)
        target_padding = torch.gather(pad[:, None].expand_as(targets), 2, target_index)
        pred = self.predictor(
            encoded.last, context_index, context_padding, target_index, target_padding
        )  # (B, k, M, D)
        flat_index = target_index.reshape(n_items, -1)
        wanted = gather_tokens(target, flat_index).reshape(pred.shape)
        if c.loss == "mse":
            error = F.mse_loss(pred.float(), wanted, reduction="none")
        else:
            error = F.smooth_l1_loss(pred.float(), wanted, reduction="none", beta=c.smooth_l1_beta)
        valid = ~target_padding.reshape(n_items, -1)
        loss = masked_mean(error.mean(dim=-1).reshape(n_items, -1), valid)
        return ObjectiveOutput(
            loss=loss,
            logs={
                "prediction_loss": float(loss.detach()),
                "target_std": float(target.std(dim=0).mean()) if n_items > 1 else 0.0,
                "context_fraction": n_context / n_time,
                "target_fraction": float(targets.any(dim=1).float().mean()),
            },
        )
