"""TERA (``tera``): Liu, Li and Lee 2021, self-supervised learning of Transformer Encoder
Representation for Audio from alteration.

Every input spectrogram is altered along three axes, and the encoder plus a light prediction head
reconstructs the **clean** input:

* **time**: spans of ``time_span`` frames starting at ``round(L · time_proportion / time_span)``
  distinct random frames of an item of ``L`` frames (overlaps allowed) are, per item, zeroed
  (probability ``time_zero``), replaced by other random spans of the same item
  (``time_random``), or left as they are (the rest: BERT's 80/10/10);
* **frequency**: one band of ``U{0 … ⌊freq_max · F⌋}`` consecutive bins at a random place is
  zeroed in every frame;
* **magnitude**: with probability ``noise_probability`` per item, Gaussian noise of standard
  deviation ``noise_std`` is added to every value.

The head (``Linear → GELU → LayerNorm → Linear``, TERA's ``SpecHead``) maps each output token to
the input values that token covers (``encoder.token_targets``: one frame for the ``tera`` encoder,
a patch for a ViT, eight frames for the BYOL-A CNN); the loss is the L1 error over the values the
time or frequency alteration touched (the noise alone does not mark values), as in s3prl.

Defaults follow TERA's ``time + freq + mag`` recipe: 15 % of frames in spans of 7, a band of at
most 20 % of the bins, noise on 15 % of the items (AdamW lr 2e-4, batch 32, 1M steps of
LibriSpeech 960 h in the paper: see ``configs/pretrain/tera_tiny.yaml``).

Differences from s3prl: the time-span count uses each item's own length (s3prl: the padded
batch's); alterations are drawn on the frontend's normalised features (s3prl: per-utterance
CMVN features, the ``tera`` converter's frontend); the noise probability is s3prl's
``NOISE_PROPORTION``, the standard deviation ``0.2`` (on the normalised values) was not checked
against s3prl's code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from echoic.encoders.base import Encoder, EncoderSpec
from echoic.errors import ConfigError
from echoic.objectives.base import Objective, masked_mean, register, token_padding
from echoic.types import Features, ObjectiveOutput, TrainBatch

__all__ = ["TERAConfig", "TERAObjective", "alter"]


@dataclass
class TERAConfig:
    """Settings of :class:`TERAObjective` (TERA time + freq + mag defaults)."""

    time_proportion: float = 0.15
    time_span: int = 7
    time_zero: float = 0.8
    time_random: float = 0.1
    freq_max: float = 0.2
    noise_probability: float = 0.15
    noise_std: float = 0.2

    def __post_init__(self) -> None:
        for name in (
            "time_proportion",
            "time_zero",
            "time_random",
            "freq_max",
            "noise_probability",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"tera.{name} must be in [0, 1]; found {value}.")
        if self.time_zero + self.time_random > 1.0:
            raise ConfigError(
                f"tera.time_zero + time_random must be <= 1; found {self.time_zero} + "
                f"{self.time_random}."
            )
        if self.time_span < 1 or self.noise_std < 0:
            raise ConfigError(
                f"tera needs time_span >= 1 and noise_std >= 0; found {self.time_span}, "
                f"{self.noise_std}."
            )


def _rand(generator: torch.Generator) -> float:
    return float(torch.rand((), generator=generator))


def alter(
    values: torch.Tensor, lengths: torch.Tensor, config: TERAConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """TERA's alterations of ``values`` ``(B, F, T)`` / ``(B, C, F, T)`` (items of ``lengths``
    frames; every random number from ``generator``, on the CPU).

    Returns the altered values (same shape) and ``(B, F, T)`` bool, True on the values whose loss
    counts (time-altered frames, frequency-altered bins, within each item's length).
    """
    x = values if values.ndim == 4 else values[:, None]
    x = x.clone()
    batch, _, n_bins, n_frames = x.shape
    device = x.device
    label = torch.zeros(batch, n_bins, n_frames, dtype=torch.bool)
    lengths = lengths.cpu()
    span = config.time_span
    for b in range(batch):
        length = int(min(int(lengths[b]), n_frames))
        n_spans = round(length * config.time_proportion / span)
        heads = max(0, length - span + 1)
        if n_spans and heads:
            n_spans = min(n_spans, heads)
            starts = torch.randperm(heads, generator=generator)[:n_spans].tolist()
            dice = _rand(generator)
            if dice < config.time_zero:
                for s in starts:
                    x[b, :, :, s : s + span] = 0.0
            elif dice < config.time_zero + config.time_random:
                sources = torch.randperm(heads, generator=generator)[:n_spans].tolist()
                clean = x[b].clone()
                for s, r in zip(starts, sources, strict=True):
                    x[b, :, :, s : s + span] = clean[:, :, r : r + span]
            for s in starts:
                label[b, :, s : s + span] = True
        width = int(torch.randint(0, int(n_bins * config.freq_max) + 1, (), generator=generator))
        if width:
            start = int(torch.randint(0, n_bins - width + 1, (), generator=generator))
            x[b, :, start : start + width, :length] = 0.0
            label[b, start : start + width, :length] = True
        if config.noise_std > 0 and _rand(generator) < config.noise_probability:
            noise = torch.randn(x.shape[1:], generator=generator) * config.noise_std
            x[b] = x[b] + noise.to(device, x.dtype)
    frames = torch.arange(n_frames)[None, :] < lengths[:, None]
    x = x * frames.to(device, x.dtype)[:, None, None, :]  # padding stays exactly 0
    altered = x if values.ndim == 4 else x[:, 0]
    return altered, label.to(device)


@register("tera")
class TERAObjective(Objective):
    """Altered spectrogram → encoder → light head → L1 against the clean values it altered."""

    config_class = TERAConfig

    @classmethod
    def check_encoder(cls, spec: EncoderSpec) -> None:
        if spec.input != "features":
            raise ConfigError(
                "tera alters spectrogram frames and bins, so it needs an encoder of spectral "
                f"features; this one reads {spec.input}. Use the tera / tera_test encoder or a "
                "ViT on a log-mel frontend."
            )

    def __init__(self, encoder: Encoder, config: TERAConfig) -> None:
        super().__init__(encoder, config)
        dim = encoder.spec.width
        self.head = nn.Sequential(
            nn.Linear(dim, dim),
            nn.GELU(),
            nn.LayerNorm(dim, eps=1e-12),
            nn.Linear(dim, encoder.spec.token_input_size),
        )

    def forward(self, batch: TrainBatch, generator: torch.Generator) -> ObjectiveOutput:
        """Loss: mean absolute error over the altered values of non-padding tokens."""
        features = batch.features
        values, label = alter(features.values, features.lengths, self.config, generator)
        altered = Features(values, features.lengths, features.hop_s, features.first_centre_s)
        out = self.encoder(altered)
        pred = self.head(out.last).float()  # (B, N, P)
        target = self.encoder.token_targets(features).float()
        weight_values = label.to(features.values.dtype)
        if features.values.ndim == 4:
            weight_values = weight_values[:, None].expand_as(features.values)
        weight = Features(weight_values, features.lengths, features.hop_s, features.first_centre_s)
        counted = self.encoder.token_targets(weight) > 0.5  # (B, N, P)
        counted = counted & ~token_padding(features, self.encoder)[..., None]
        loss = masked_mean((pred - target).abs(), counted)
        return ObjectiveOutput(
            loss=loss,
            logs={
                "l1": float(loss.detach()),
                "altered_fraction": float(label.float().mean()),
            },
        )
