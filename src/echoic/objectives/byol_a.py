"""BYOL for Audio (``byol_a``): Niizumi et al. 2021 (v1, IJCNN) and 2023 (v2, IEEE/ACM TASLP).

Every item of the batch (one segment) is augmented twice, independently, on its normalised
log-mel frames:

1. **mixup** with another clip of the batch in the linear-power domain: ``log((1 − λ) e^x +
   λ e^z)``, ``λ ~ U(0, mixup_ratio)`` (BYOL-A mixes with a FIFO memory of past segments);
2. **random resize crop**: a crop of ``U(crop_scale)`` times the input's height and width, placed
   at random on a zero canvas ``crop_virtual_scale`` times the input (the input centred on it), is
   resized back to the input's size (bilinear);
3. **random linear fader** (v2): a ramp from ``gain · U(−1, 1)`` to ``gain · U(−1, 1)`` over time
   is added to every bin (``fader_gain = 0``: BYOL-A v1).

The online branch (encoder → pooled embedding → projector MLP → predictor MLP) predicts, for
each view, the EMA target branch's (encoder → pooled embedding → projector) output of the other
view; the loss is ``2 − 2 cos`` of the pair, summed over both directions and averaged over the
batch. No negatives: the asymmetry of predictor and EMA keeps the embedding from collapsing,
which the logs let you watch: ``embedding_std`` (the standard deviation over the batch of the
L2-normalised pooled embeddings, averaged over channels: ``1/sqrt(D)`` for spread-out
embeddings, 0 when collapsed) and ``effective_rank`` (:func:`collapse_metrics`).

The encoder is any spectrogram encoder: the AudioNTT CNN of BYOL-A (``byol_a`` /
``byol_a_test``; pooled by temporal mean + max, as BYOL-A) or, as an option, a ViT (pooled by its
CLS token, ``pool="auto"``). The target network normalises with its batch's statistics, as
BYOL's does, without touching its running statistics (:func:`batch_statistics`).

Defaults follow BYOL-A: mixup ratio 0.4, virtual crop scale (1.0, 1.5), crop scale (0.6, 1.5),
fader gain 1.0 (v2), projector and predictor 4096 → 256 with BatchNorm, EMA decay 0.99 (Adam lr
3e-4 (v1) / 1e-4 (v2), 100 epochs of AudioSet, batch 256, 64-bin log-mel at 16 kHz, 0.95-s
segments: see ``configs/pretrain/byol_a_tiny.yaml``).

Differences from the released code: mixup partners are other clips of the batch, not a memory
bank; the crop is resized bilinearly (BYOL-A: bicubic); there is no post-augmentation
normalisation (v1's running statistics); the augmented views count as unpadded.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from echoic.encoders.base import Encoder, EncoderSpec
from echoic.errors import ConfigError
from echoic.objectives.base import Objective, ema_update, frozen_copy, register
from echoic.types import EncoderOutput, Features, ObjectiveOutput, TrainBatch

__all__ = [
    "BYOLAObjective",
    "BYOLAObjectiveConfig",
    "augment_views",
    "batch_statistics",
    "collapse_metrics",
    "mixup_partners",
]

POOLS = ("auto", "mean+max", "mean", "cls")


@dataclass
class BYOLAObjectiveConfig:
    """Settings of :class:`BYOLAObjective` (BYOL-A v2 defaults; ``fader_gain: 0`` for v1).

    pool: the clip embedding the heads see: ``"mean+max"`` (BYOL-A: temporal mean + max of the
        last layer), ``"mean"``, ``"cls"`` (the CLS token) or ``"auto"`` (CLS when the encoder
        has one, else mean + max).
    """

    mixup_ratio: float = 0.4
    crop_virtual_scale: tuple[float, float] = (1.0, 1.5)
    crop_scale: tuple[float, float] = (0.6, 1.5)
    fader_gain: float = 1.0
    projector_hidden: int = 4096
    projector_dim: int = 256
    ema_decay: float = 0.99
    pool: str = "auto"

    def __post_init__(self) -> None:
        self.crop_virtual_scale = (
            float(self.crop_virtual_scale[0]),
            float(self.crop_virtual_scale[1]),
        )
        self.crop_scale = (float(self.crop_scale[0]), float(self.crop_scale[1]))
        if not 0.0 <= self.mixup_ratio < 1.0:
            raise ConfigError(f"byol_a.mixup_ratio must be in [0, 1); found {self.mixup_ratio}.")
        if min(self.crop_virtual_scale) < 1.0:
            raise ConfigError(
                f"byol_a.crop_virtual_scale must be >= 1 (a canvas at least the input's size); "
                f"found {self.crop_virtual_scale}."
            )
        if not 0.0 < self.crop_scale[0] <= self.crop_scale[1]:
            raise ConfigError(
                f"byol_a.crop_scale must be (low, high) with 0 < low <= high; found "
                f"{self.crop_scale}."
            )
        if not 0.0 <= self.ema_decay <= 1.0:
            raise ConfigError(f"byol_a.ema_decay must be in [0, 1]; found {self.ema_decay}.")
        if self.pool not in POOLS:
            raise ConfigError(
                f"byol_a.pool must be one of {', '.join(POOLS)}; found {self.pool!r}."
            )


def mixup_partners(clip_index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``(B,)`` for each item, a random item of **another** clip (itself when there is none)."""
    batch = clip_index.shape[0]
    clips = clip_index.cpu()
    scores = torch.rand(batch, batch, generator=generator)
    other = clips[:, None] != clips[None, :]
    scores = torch.where(other, scores, torch.full_like(scores, -1.0))
    best, partner = scores.max(dim=1)
    return torch.where(best >= 0, partner, torch.arange(batch))


def augment_views(
    values: torch.Tensor,
    partners: torch.Tensor,
    config: BYOLAObjectiveConfig,
    generator: torch.Generator,
) -> torch.Tensor:
    """One augmented view of every item: mixup → random resize crop → linear fader.

    values: ``(B, F, T)`` or ``(B, C, F, T)`` normalised log-mel; partners: ``(B,)`` mixup partner
    of each item (:func:`mixup_partners`). Every random number comes from ``generator`` (CPU).
    """
    mono = values.ndim == 3
    x = values[:, None] if mono else values  # (B, C, F, T)
    batch, _, n_bins, n_frames = x.shape
    device, dtype = x.device, x.dtype

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return (
            low + (high - low) * torch.rand(*shape, generator=generator, dtype=torch.float64)
        ).to(device)

    # 1. log-mixup-exp with the partner, in float64-safe log space
    lam = uniform(0.0, config.mixup_ratio, batch).to(dtype)[:, None, None, None]
    partner = x[partners.to(device)]
    x = torch.logaddexp(x + torch.log1p(-lam), partner + torch.log(lam))

    # 2. random resize crop on a zero canvas, as an affine resampling
    vf, vt = config.crop_virtual_scale
    canvas_f, canvas_t = n_bins * vf, n_frames * vt
    low, high = config.crop_scale
    h = torch.minimum(uniform(low, high, batch) * n_bins, torch.tensor(canvas_f, device=device))
    w = torch.minimum(uniform(low, high, batch) * n_frames, torch.tensor(canvas_t, device=device))
    top = uniform(0.0, 1.0, batch) * (canvas_f - h)
    left = uniform(0.0, 1.0, batch) * (canvas_t - w)
    centre_f = top + h / 2 - (canvas_f - n_bins) / 2  # crop centre in input pixels
    centre_t = left + w / 2 - (canvas_t - n_frames) / 2
    theta = torch.zeros(batch, 2, 3, dtype=torch.float64, device=device)
    theta[:, 0, 0] = w / n_frames
    theta[:, 0, 2] = 2 * centre_t / n_frames - 1
    theta[:, 1, 1] = h / n_bins
    theta[:, 1, 2] = 2 * centre_f / n_bins - 1
    grid = F.affine_grid(theta.to(dtype), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    # 3. linear fader over time
    if config.fader_gain > 0:
        ends = uniform(-config.fader_gain, config.fader_gain, batch, 2).to(dtype)
        ramp = torch.linspace(0.0, 1.0, n_frames, device=device, dtype=dtype)
        slope = ends[:, :1] + (ends[:, 1:] - ends[:, :1]) * ramp  # (B, T)
        x = x + slope[:, None, None, :]
    return x[:, 0] if mono else x


@contextlib.contextmanager
def batch_statistics(module: nn.Module) -> Iterator[None]:
    """Inside, every BatchNorm of ``module`` normalises with its batch's statistics (as in
    training) and leaves its running statistics and counters untouched."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.training, m.track_running_stats) for m in norms]
    for m in norms:
        m.training, m.track_running_stats = True, False
    try:
        yield
    finally:
        for m, (training, track) in zip(norms, saved, strict=True):
            m.training, m.track_running_stats = training, track


def collapse_metrics(embeddings: torch.Tensor) -> tuple[float, float]:
    """``(std, effective_rank)`` of ``(B, D)`` embeddings, the usual collapse checks.

    std: per-channel standard deviation over the batch of the L2-normalised embeddings, averaged
    over channels (about ``1/sqrt(D)`` when spread out, 0 when every item maps to one point).
    effective_rank: ``exp`` of the entropy of the singular values normalised to sum 1 (RankMe,
    Garrido et al. 2023): 1 for a collapsed batch, at most ``min(B, D)``.
    """
    z = embeddings.detach().float()
    if z.shape[0] < 2:
        return 0.0, 1.0
    std = float(F.normalize(z, dim=-1).std(dim=0).mean())
    singular = torch.linalg.svdvals(z)
    p = singular / singular.sum().clamp_min(1e-12)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
    return std, float(math.exp(float(entropy)))


def _mlp(dim: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, out)
    )


@register("byol_a")
class BYOLAObjective(Objective):
    """Two augmentations of every segment; online predictor → EMA target, both directions."""

    config_class = BYOLAObjectiveConfig

    @classmethod
    def check_encoder(cls, spec: EncoderSpec) -> None:
        if spec.input != "features":
            raise ConfigError(
                "byol_a augments log-mel frames (mixup, resize crop, fader), so it needs an "
                f"encoder of spectral features; this one reads {spec.input}. Use the byol_a / "
                "byol_a_test CNN or a ViT on a log-mel frontend."
            )

    def __init__(self, encoder: Encoder, config: BYOLAObjectiveConfig) -> None:
        super().__init__(encoder, config)
        dim = encoder.spec.width
        pool = config.pool
        if pool == "auto":
            pool = "cls" if encoder.spec.cls_tokens >= 1 else "mean+max"
        if pool == "cls" and encoder.spec.cls_tokens < 1:
            raise ConfigError(
                "byol_a.pool='cls' needs an encoder with a CLS token; use pool: mean+max."
            )
        self.pool = pool
        self.projector = _mlp(dim, config.projector_hidden, config.projector_dim)
        self.predictor = _mlp(config.projector_dim, config.projector_hidden, config.projector_dim)
        self.ema = cast(nn.ModuleDict, frozen_copy(self._online()))

    def _online(self) -> nn.ModuleDict:
        return nn.ModuleDict({"encoder": self.encoder, "projector": self.projector})

    def teacher(self) -> nn.Module:
        return self.ema

    @torch.no_grad()
    def after_optimizer_step(self) -> dict[str, float]:
        ema_update(self.ema, self._online(), self.config.ema_decay)
        return {"ema_decay": self.config.ema_decay}

    def pooled(self, out: EncoderOutput) -> torch.Tensor:
        """``(B, D)`` clip embedding of an encoder output (``self.pool``)."""
        if self.pool == "cls":
            assert out.cls_layers is not None
            return out.cls_layers[-1]
        frames, padded = out.last, out.padding_mask[..., None]
        count = (~padded).sum(1).clamp_min(1)
        mean = frames.masked_fill(padded, 0.0).sum(1) / count
        if self.pool == "mean":
            return mean
        return mean + frames.masked_fill(padded, float("-inf")).amax(1)

    def forward(self, batch: TrainBatch, generator: torch.Generator) -> ObjectiveOutput:
        """Loss: ``(2 − 2cos(q_a, z'_b)) + (2 − 2cos(q_b, z'_a))``, mean over the batch."""
        features = batch.features
        full = torch.full_like(features.lengths, features.n_frames)
        views = []
        for _ in range(2):
            partners = mixup_partners(batch.clip_index, generator)
            values = augment_views(features.values, partners, self.config, generator)
            views.append(Features(values, full, features.hop_s, features.first_centre_s))

        embeddings = [self.pooled(self.encoder(view)) for view in views]
        online = [self.predictor(self.projector(e)) for e in embeddings]
        with torch.no_grad(), batch_statistics(self.ema):
            encoder, projector = self.ema["encoder"], self.ema["projector"]
            target = [projector(self.pooled(encoder(view))) for view in views]
        distance = [
            2.0 - 2.0 * F.cosine_similarity(p.float(), z.float(), dim=-1)
            for p, z in ((online[0], target[1]), (online[1], target[0]))
        ]
        loss = (distance[0] + distance[1]).mean()
        std, rank = collapse_metrics(embeddings[0])
        return ObjectiveOutput(
            loss=loss,
            logs={"embedding_std": std, "effective_rank": rank, "byol_loss": float(loss.detach())},
        )
