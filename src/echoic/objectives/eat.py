"""Efficient Audio Transformer (``eat``): Chen et al. 2024, after data2vec 2.0 (Baevski et al. 2023).

Per clip, an EMA teacher encodes the full, unmasked clip **once**; its targets are the average of
its top ``average_top_k_layers`` block outputs, each instance-normalised over tokens, then
layer-normalised. The student sees ``clone_batch`` differently masked copies of the clip, each
keeping only the visible ~20% of the tokens (inverse-block masking). A light 2-D CNN decoder fills
hidden positions with small noise, and regresses the teacher targets at hidden positions (frame
loss); the student's final CLS output regresses the mean target of the clip (utterance loss).
The teacher moves toward the student after every optimiser step with a decay annealed linearly
from ``ema_decay`` to ``ema_end_decay`` over ``ema_anneal_end_step`` updates.

Defaults follow EAT's released AudioSet-2M config: 16 clones, mask ratio 0.8 with 5×5 inverse
blocks (+0.07 adjust), 12 target layers, EMA 0.9998 → 0.99999 over 100k updates, decoder 6 conv
layers of width 768, kernel 3, 16 groups, mask noise std 0.01, utterance loss weight 1 (Adam
betas (0.9, 0.95), weight decay 0.05, lr 5e-4, 53,333 warm-up of 400k updates, clip norm 4: see
``configs/pretrain/eat_base.yaml``).

Differences from the fairseq code: targets are the encoder's block outputs (its last one after the
final LayerNorm) rather than data2vec's pre-residual FFN outputs of post-LN blocks; the teacher is
an EMA of the whole student encoder (EAT's ``ema_encoder_only: false``); both losses are plain means
of the squared error (data2vec scales by ``1/sqrt(D)`` and sums the utterance loss over clones).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F
from torch import nn

from echoic.encoders.base import Encoder, EncoderSpec
from echoic.errors import ConfigError
from echoic.masking import MaskSample, build_masker
from echoic.objectives.base import (
    AnnealedEmaTeacher,
    Objective,
    device_generator,
    frozen_copy,
    masked_mean,
    register,
    require_keep_idx,
    token_padding,
)
from echoic.types import Features, ObjectiveOutput, TrainBatch

__all__ = ["ConvDecoder2d", "EATConfig", "EATObjective", "clone_rows", "layer_targets"]


@dataclass
class EATConfig:
    """Settings of :class:`EATObjective` (EAT AudioSet-2M defaults)."""

    method: ClassVar[str] = "eat"
    """The objective these settings belong to (error messages)."""

    clone_batch: int = 16
    mask: str = "inverse_block"
    mask_ratio: float = 0.8
    mask_options: dict[str, Any] = field(
        default_factory=lambda: {"block": [5, 5], "adjust": 0.07, "inverse": True}
    )
    average_top_k_layers: int = 12
    instance_norm_target_layer: bool = True
    layer_norm_targets: bool = True
    ema_decay: float = 0.9998
    ema_end_decay: float = 0.99999
    ema_anneal_end_step: int = 100_000
    decoder_dim: int = 768
    decoder_layers: int = 6
    decoder_kernel: int = 3
    decoder_groups: int = 16
    mask_noise_std: float = 0.01
    frame_loss_weight: float = 1.0
    utterance_loss_weight: float = 1.0

    def __post_init__(self) -> None:
        name = self.method
        if self.clone_batch < 1:
            raise ConfigError(f"{name}.clone_batch must be >= 1; found {self.clone_batch}.")
        if self.decoder_kernel % 2 == 0:
            raise ConfigError(
                f"{name}.decoder_kernel must be odd (same-size convolution); found "
                f"{self.decoder_kernel}."
            )
        if not 0.0 <= self.ema_decay <= self.ema_end_decay <= 1.0:
            raise ConfigError(
                f"{name} needs 0 <= ema_decay <= ema_end_decay <= 1; found {self.ema_decay}, "
                f"{self.ema_end_decay}."
            )


class ConvDecoder2d(nn.Module):
    """data2vec 2.0's image decoder: tokens on the ``(n_freq, n_time)`` grid → conv blocks.

    Each block is ``Conv2d(kernel, groups) → LayerNorm over channels (no affine) → GELU`` with a
    residual connection wherever the width is unchanged; a final linear maps back to ``dim``.
    ``kernel`` is square (an int) or ``(freq, time)``: ``(1, k)`` is data2vec 2.0's 1-D audio
    decoder on a ``(1, n_time)`` grid.
    """

    def __init__(
        self, dim: int, width: int, layers: int, kernel: int | tuple[int, int], groups: int
    ) -> None:
        super().__init__()
        if dim % groups or width % groups:
            raise ConfigError(
                f"decoder groups={groups} must divide the encoder width {dim} and the decoder "
                f"width {width}; choose a common divisor."
            )
        size = (kernel, kernel) if isinstance(kernel, int) else kernel
        padding = (size[0] // 2, size[1] // 2)
        self.convs = nn.ModuleList(
            nn.Conv2d(dim if i == 0 else width, width, size, padding=padding, groups=groups)
            for i in range(layers)
        )
        self.proj = nn.Linear(width, dim)

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """x: ``(B, N, D)`` tokens in grid order (time-major). Returns ``(B, N, D)``."""
        batch, n_tokens, _ = x.shape
        n_freq, n_time = grid
        h = x.reshape(batch, n_time, n_freq, -1).permute(0, 3, 2, 1)  # (B, D, nF, nT)
        residual = h
        for conv in self.convs:
            h = conv(h)
            h = F.layer_norm(h.permute(0, 2, 3, 1), h.shape[1:2]).permute(0, 3, 1, 2)
            h = F.gelu(h)
            if h.shape == residual.shape:
                h = h + residual
            residual = h
        h = h.permute(0, 3, 2, 1).reshape(batch, n_tokens, -1)  # back to time-major tokens
        return self.proj(h)


def layer_targets(
    layers: list[torch.Tensor], instance_norm_each: bool, layer_norm_result: bool
) -> torch.Tensor:
    """Average of ``layers`` (each ``(B, N, D)``) → ``(B, N, D)`` float32 targets.

    Each layer is first instance-normalised over tokens per channel (``instance_norm_each``), the
    mean is then layer-normalised over channels (``layer_norm_result``), neither with affine terms.
    """
    acc = None
    for layer in layers:
        y = layer.float()
        if instance_norm_each:
            y = F.instance_norm(y.transpose(1, 2)).transpose(1, 2)
        acc = y if acc is None else acc + y
    assert acc is not None
    acc = acc / len(layers)
    if layer_norm_result:
        acc = F.layer_norm(acc, acc.shape[-1:])
    return acc


@register("eat")
class EATObjective(AnnealedEmaTeacher, Objective):
    """EMA teacher on the full clip once; ``clone_batch`` masked students regress its targets."""

    config_class = EATConfig

    @classmethod
    def check_encoder(cls, spec: EncoderSpec) -> None:
        require_keep_idx("eat", spec)
        if spec.cls_tokens < 1:
            raise ConfigError(
                "eat needs an encoder with a CLS token (utterance loss); set cls_token=True."
            )

    def __init__(self, encoder: Encoder, config: EATConfig) -> None:
        super().__init__(encoder, config)
        self.masker = build_masker(config.mask, mask_ratio=config.mask_ratio, **config.mask_options)
        self.ema = cast(Encoder, frozen_copy(encoder))
        self.decoder = ConvDecoder2d(
            encoder.spec.width,
            config.decoder_dim,
            config.decoder_layers,
            self.decoder_kernel_size(config.decoder_kernel),
            config.decoder_groups,
        )
        self.num_updates: torch.Tensor
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.int64))

    def decoder_kernel_size(self, kernel: int) -> tuple[int, int]:
        """``(freq, time)`` kernel of the decoder's convolutions: square on EAT's 2-D grid."""
        return (kernel, kernel)

    @torch.no_grad()
    def targets(self, features: Features) -> torch.Tensor:
        """``(B, N, D)`` float32 teacher targets of the full clips."""
        self.ema.eval()
        out = self.ema(features)
        k = min(self.config.average_top_k_layers, len(out.layers) - 1)
        return layer_targets(
            out.layers[-k:], self.config.instance_norm_target_layer, self.config.layer_norm_targets
        )

    def forward(self, batch_in: TrainBatch, generator: torch.Generator) -> ObjectiveOutput:
        """Every item is a clip; the student runs on ``B * clone_batch`` masked copies."""
        features = batch_in.features
        target = self.targets(features)  # (B, N, D)
        student_in = clone_rows(features, self.config.clone_batch)
        grid = self.encoder.grid(features.n_frames)
        sample = self.masker(student_in.values.shape[0], grid, generator)
        out = self.encoder(student_in, keep_idx=sample.keep_idx.to(features.values.device))
        return self.regress(out.last, out.cls_layers, target, sample, student_in, grid, generator)

    def regress(
        self,
        visible: torch.Tensor,
        cls_layers: list[torch.Tensor] | None,
        target: torch.Tensor,
        sample: MaskSample,
        student_in: Features,
        grid: tuple[int, int],
        generator: torch.Generator,
    ) -> ObjectiveOutput:
        """Decoder and losses: ``visible (rows, K, D)`` student outputs of the kept tokens of the
        ``rows = B * clone_batch`` clones (clip-major), ``target (B, N, D)``, the clones' masks."""
        device = visible.device
        rows, _, dim = visible.shape
        batch = target.shape[0]
        clones = rows // batch
        n_tokens = grid[0] * grid[1]
        keep_idx = sample.keep_idx.to(device)
        masked_idx = sample.masked_idx.to(device)
        noise = torch.randn(
            (rows, n_tokens, dim), generator=device_generator(generator, device), device=device
        )
        full = (noise * self.config.mask_noise_std).to(visible.dtype)
        full = torch.scatter(full, 1, keep_idx[:, :, None].expand(-1, -1, dim), visible)
        pred = self.decoder(full, grid)  # (rows, N, D)

        clip = torch.arange(batch, device=device).repeat_interleave(clones)  # (rows,)
        pred_masked = torch.gather(pred, 1, masked_idx[:, :, None].expand(-1, -1, dim))
        target_masked = target[clip[:, None], masked_idx]  # (rows, M, D)
        padding = token_padding(student_in, self.encoder)
        valid = ~torch.gather(padding, 1, masked_idx)
        frame = masked_mean(((pred_masked.float() - target_masked) ** 2).mean(dim=-1), valid)
        c = self.config
        loss = c.frame_loss_weight * frame
        logs = {"frame_loss": float(frame.detach())}
        if c.utterance_loss_weight > 0:  # EAT; data2vec 2.0 has no utterance loss
            if cls_layers is None:
                raise ConfigError(
                    f"{self.name}.utterance_loss_weight > 0 needs an encoder with a CLS token; "
                    "set cls_token=True or utterance_loss_weight=0."
                )
            cls = cls_layers[-1].float()  # (rows, D), after the final LayerNorm
            utterance = ((cls - target.mean(dim=1)[clip]) ** 2).mean()
            loss = loss + c.utterance_loss_weight * utterance
            logs["utterance_loss"] = float(utterance.detach())
        logs["target_std"] = float(target.std(dim=0).mean()) if batch > 1 else 0.0
        logs["masked_fraction"] = sample.n_masked / n_tokens
        return ObjectiveOutput(loss=loss, logs=logs)


def clone_rows(features: Features, clones: int) -> Features:
    """``features`` with every item repeated ``clones`` times, clip-major (EAT's clone batch)."""
    return Features(
        values=features.values.repeat_interleave(clones, dim=0),
        lengths=features.lengths.repeat_interleave(clones, dim=0),
        hop_s=features.hop_s,
        first_centre_s=features.first_centre_s,
    )
