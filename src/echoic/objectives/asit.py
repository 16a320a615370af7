"""ASiT (``asit``): local-global audio spectrogram transformer, Atito et al. 2022 (after SiT, GMML
and DINO / iBOT).

Every item of the batch is a *global* view (a crop of a clip; ``data.views: 2`` gives two per
clip). Three signals train the student ViT:

* **GMML corruption + reconstruction**: random rectangles of patches (sides drawn up to
  ``max_block`` patches, snapped to the patch grid) hide ``mask_ratio`` of each view's patches;
  their input values are replaced by zeros or by Gaussian noise (each view: noise with
  probability ``noise_probability``). A light head maps each output patch token back to its input
  values (``encoder.token_targets``); the loss is the L1 error on the corrupted patches.
* **global distillation (CLS)**: an EMA teacher sees the clean global views; the student's CLS of a
  corrupted view and of ``local_crops`` short crops (``local_fraction`` of each view's time steps,
  clean) are pushed, through a DINO head (MLP → L2-normalised bottleneck → cosine to
  ``out_dim`` prototypes), toward the teacher's **centred and sharpened** CLS distribution of the
  *other* global views of the same clip (the same view when a clip has one): cross-entropy
  between ``softmax((t − c) / teacher_temp)`` and ``softmax(s / student_temp)``.
* **local distillation (patches)**: the same on every corrupted patch token, against the teacher's
  patch token of the clean view (iBOT's masked-patch distillation), through a second DINO head.

The centres are running means of the teacher's outputs (momentum ``center_momentum``), updated in
:meth:`ASiTObjective.after_optimizer_step` from the last batch (the first step centres on its own
batch mean), so a forward pass changes no state that its loss depends on. Collapse checks logged every step: ``embedding_std`` and
``effective_rank`` of the student's global CLS embeddings (:func:`~echoic.objectives.byol_a.
collapse_metrics`) and ``teacher_entropy`` (mean entropy of the teacher's CLS distribution; a
collapsed teacher gives 0 with a sharp centre-dominated output, or ``log(out_dim)`` when uniform).

Defaults follow SiT / DINO / iBOT where ASiT's own values were not checked: ``mask_ratio`` 0.5,
rectangles up to 4 patches a side, noise or zeros half the time, 4 local crops of half the time
steps, heads 2048 → 2048 → 256 → 8192 prototypes, student temperature 0.1, teacher 0.04, centre
momentum 0.9, EMA 0.996 → 1 (linear here; DINO: cosine), equal loss weights.

Differences from ASiT: no replacement of patches by patches of another clip (GMML's third
option); the rectangles have exact counts (a random part of the last one); local crops are cut
from the global views (time only, all frequencies; ASiT: separate random crops of the clip); the
prototype layer is unit-norm without DINO's learned scale (``norm_last_layer=True``); the centres
start at the first batch's mean (DINO: zeros, which makes the first steps' loss artificially low)
and follow the last micro-batch only when gradients accumulate.
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
from echoic.masking.base import arrival_priority, rank_select
from echoic.objectives.base import (
    AnnealedEmaTeacher,
    Objective,
    frozen_copy,
    masked_mean,
    register,
    token_padding,
)
from echoic.objectives.byol_a import collapse_metrics
from echoic.types import Features, ObjectiveOutput, TrainBatch

__all__ = ["ASiTConfig", "ASiTObjective", "DINOHead", "gmml_mask", "pixel_mask"]


@dataclass
class ASiTConfig:
    """Settings of :class:`ASiTObjective` (see the module docstring for where they come from)."""

    mask_ratio: float = 0.5
    max_block: int = 4
    noise_probability: float = 0.5
    local_crops: int = 4
    local_fraction: float = 0.5
    head_hidden: int = 2048
    head_bottleneck: int = 256
    out_dim: int = 8192
    student_temp: float = 0.1
    teacher_temp: float = 0.04
    center_momentum: float = 0.9
    reconstruction_weight: float = 1.0
    global_weight: float = 1.0
    local_weight: float = 1.0
    ema_decay: float = 0.996
    ema_end_decay: float = 1.0
    ema_anneal_end_step: int = 100_000

    def __post_init__(self) -> None:
        checks = {
            "mask_ratio": 0.0 < self.mask_ratio < 1.0,
            "noise_probability": 0.0 <= self.noise_probability <= 1.0,
            "local_fraction": 0.0 < self.local_fraction <= 1.0,
            "center_momentum": 0.0 <= self.center_momentum < 1.0,
            "max_block": self.max_block >= 1,
            "local_crops": self.local_crops >= 0,
            "student_temp / teacher_temp": min(self.student_temp, self.teacher_temp) > 0,
            "ema_decay <= ema_end_decay": 0.0 <= self.ema_decay <= self.ema_end_decay <= 1.0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(
                f"asit: invalid {', '.join(bad)} (ratios and probabilities in [0, 1], mask_ratio "
                "and local_fraction above 0, sizes and temperatures positive)."
            )


def gmml_mask(
    batch: int, grid: tuple[int, int], ratio: float, max_block: int, generator: torch.Generator
) -> torch.Tensor:
    """``(B, N)`` bool, exactly ``round(ratio * N)`` (clamped to ``[1, N - 1]``) True per item,
    made of random rectangles of ``1 … max_block`` patches a side (time-major token order)."""
    n_freq, n_time = grid
    n_tokens = n_freq * n_time
    n_hidden = min(max(round(ratio * n_tokens), 1), n_tokens - 1)
    mean_area = ((1 + max_block) / 2) ** 2
    n_shapes = math.ceil(3 * n_hidden / mean_area) + 4
    size = (batch, n_shapes, 1)
    height = torch.randint(1, max_block + 1, size, generator=generator)
    width = torch.randint(1, max_block + 1, size, generator=generator)
    top = torch.randint(0, n_freq, size, generator=generator)
    left = torch.randint(0, n_time, size, generator=generator)
    token = torch.arange(n_tokens)
    t, f = (token // n_freq)[None, None], (token % n_freq)[None, None]
    cover = (f >= top) & (f < top + height) & (t >= left) & (t < left + width)  # (B, S, N)
    return rank_select(arrival_priority(cover), n_hidden, generator)


def pixel_mask(hidden: torch.Tensor, spec: EncoderSpec, n_frames: int) -> torch.Tensor:
    """``(B, N)`` hidden patches (time-major) → ``(B, F, T)`` bool over the input values."""
    batch = hidden.shape[0]
    n_freq = spec.freq_tokens
    height = spec.n_bins // n_freq
    grid = hidden.reshape(batch, -1, n_freq).transpose(1, 2)  # (B, nF, nT)
    values = grid.repeat_interleave(height, dim=1).repeat_interleave(spec.stride, dim=2)
    return values[:, :, :n_frames]


class DINOHead(nn.Module):
    """``MLP(D → hidden → hidden → bottleneck)`` → L2-normalise → cosine to ``out_dim`` unit
    prototypes: ``(..., D)`` → ``(..., out_dim)`` logits in ``[-1, 1]``."""

    def __init__(self, dim: int, hidden: int, bottleneck: int, out_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Linear(hidden, bottleneck),
        )
        self.prototypes = nn.Parameter(torch.randn(out_dim, bottleneck) * 0.02)
        for module in self.mlp:
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.normalize(self.mlp(x), dim=-1)
        return z @ F.normalize(self.prototypes, dim=-1).T


def distill(
    student: torch.Tensor, teacher: torch.Tensor, center: torch.Tensor, s_temp: float, t_temp: float
) -> torch.Tensor:
    """``(..., K)`` per-row cross-entropy of the centred, sharpened teacher to the student."""
    target = F.softmax((teacher.float() - center) / t_temp, dim=-1)
    return -(target * F.log_softmax(student.float() / s_temp, dim=-1)).sum(dim=-1)


@register("asit")
class ASiTObjective(AnnealedEmaTeacher, Objective):
    """GMML-corrupted global views + clean local crops; EMA teacher on the clean global views."""

    config_class = ASiTConfig

    @classmethod
    def check_encoder(cls, spec: EncoderSpec) -> None:
        if spec.input != "features" or spec.cls_tokens < 1:
            raise ConfigError(
                "asit corrupts patches of a spectrogram and distils a CLS token: it needs an "
                "encoder of spectral features with a CLS token (e.g. vit_test, vit_tiny)."
            )
        if spec.receptive != spec.stride or spec.n_bins % spec.freq_tokens:
            raise ConfigError(
                "asit replaces whole patches in the input, which needs non-overlapping patches "
                f"(receptive == stride, bins divisible by the frequency tokens); found stride "
                f"{spec.stride}, receptive {spec.receptive}, {spec.n_bins} bins over "
                f"{spec.freq_tokens} tokens. Use a ViT without patch_stride."
            )

    def __init__(self, encoder: Encoder, config: ASiTConfig) -> None:
        super().__init__(encoder, config)
        spec = encoder.spec
        c = config
        self.cls_head = DINOHead(spec.width, c.head_hidden, c.head_bottleneck, c.out_dim)
        self.patch_head = DINOHead(spec.width, c.head_hidden, c.head_bottleneck, c.out_dim)
        self.reconstruct = nn.Sequential(
            nn.Linear(spec.width, spec.width),
            nn.GELU(),
            nn.Linear(spec.width, spec.token_input_size),
        )
        self.ema = cast(nn.ModuleDict, frozen_copy(self._online()))
        self.num_updates: torch.Tensor
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.int64))
        self.cls_center: torch.Tensor
        self.patch_center: torch.Tensor
        self.cls_pending: torch.Tensor
        self.patch_pending: torch.Tensor
        for name in ("cls_center", "patch_center", "cls_pending", "patch_pending"):
            self.register_buffer(name, torch.zeros(c.out_dim))

    def _online(self) -> nn.ModuleDict:
        return nn.ModuleDict(
            {"encoder": self.encoder, "cls_head": self.cls_head, "patch_head": self.patch_head}
        )

    def ema_source(self) -> nn.Module:
        return self._online()

    @torch.no_grad()
    def after_optimizer_step(self) -> dict[str, float]:
        m = self.config.center_momentum if int(self.num_updates) > 0 else 0.0
        self.cls_center.mul_(m).add_(self.cls_pending, alpha=1 - m)
        self.patch_center.mul_(m).add_(self.patch_pending, alpha=1 - m)
        return super().after_optimizer_step()  # the EMA step, then num_updates += 1

    def corrupt(
        self, features: Features, generator: torch.Generator
    ) -> tuple[Features, torch.Tensor]:
        """GMML: ``(corrupted features, hidden (B, N))``; zeros or noise per view."""
        c = self.config
        values = features.values
        batch = values.shape[0]
        grid = self.encoder.grid(features.n_frames)
        hidden = gmml_mask(batch, grid, c.mask_ratio, c.max_block, generator)
        use_noise = torch.rand(batch, generator=generator) < c.noise_probability
        noise = torch.randn(values.shape, generator=generator) * use_noise.view(
            -1, *[1] * (values.ndim - 1)
        )
        where = pixel_mask(hidden, self.encoder.spec, features.n_frames).to(values.device)
        if values.ndim == 4:  # (B, C, F, T): the same patches in every channel
            where = where[:, None]
        corrupted = torch.where(where, noise.to(values.device, values.dtype), values)
        out = Features(corrupted, features.lengths, features.hop_s, features.first_centre_s)
        return out, hidden.to(values.device)

    def local_views(self, features: Features, generator: torch.Generator) -> list[Features]:
        """``local_crops`` clean crops of ``local_fraction`` of each view's time steps."""
        c = self.config
        spec = self.encoder.spec
        n_time = self.encoder.grid(features.n_frames)[1]
        steps = max(1, round(c.local_fraction * n_time))
        frames = steps * spec.stride
        views = []
        for _ in range(c.local_crops):
            start = (
                int(torch.randint(0, n_time - steps + 1, (1,), generator=generator)) * spec.stride
            )
            values = features.values[..., start : start + frames]
            if values.shape[-1] < frames:  # a partial last patch: zero-fill as the ViT does
                values = F.pad(values, (0, frames - values.shape[-1]))
            lengths = (features.lengths - start).clamp(0, frames)
            first = features.first_centre_s + start * features.hop_s
            views.append(Features(values, lengths, features.hop_s, first))
        return views

    def forward(self, batch: TrainBatch, generator: torch.Generator) -> ObjectiveOutput:
        """Loss: ``w_rec · L1 + w_global · CLS distillation + w_local · patch distillation``."""
        c = self.config
        features = batch.features
        device = features.values.device
        corrupted, hidden = self.corrupt(features, generator)
        locals_ = self.local_views(features, generator)
        with torch.no_grad():
            self.ema.eval()
            teacher = self.ema["encoder"](features)
            assert teacher.cls_layers is not None
            t_cls = self.ema["cls_head"](teacher.cls_layers[-1])  # (B, K)
            t_patch = self.ema["patch_head"](teacher.last)  # (B, N, K)
            padding = token_padding(features, self.encoder)
            # centres move in after_optimizer_step, from this batch; the first step uses its own
            self.cls_pending.copy_(t_cls.float().mean(dim=0))
            keep = (~padding).float()[..., None]
            self.patch_pending.copy_((t_patch.float() * keep).sum((0, 1)) / keep.sum().clamp_min(1))
            first = int(self.num_updates) == 0
            cls_center = self.cls_pending if first else self.cls_center
            patch_center = self.patch_pending if first else self.patch_center

        out = self.encoder(corrupted)
        assert out.cls_layers is not None
        valid = hidden & ~padding

        # GMML reconstruction of the clean input values of the corrupted patches
        pixels = self.encoder.token_targets(features)
        l1 = (self.reconstruct(out.last).float() - pixels.float()).abs().mean(dim=-1)
        reconstruction = masked_mean(l1, valid)

        # global: student CLS of a corrupted global view → teacher CLS of the other global views
        # of the clip (the same view when the clip has one); of a clean local crop → every one
        clip = batch.clip_index.to(device)
        same = clip[:, None] == clip[None, :]
        eye = torch.eye(len(clip), dtype=torch.bool, device=device)
        pairs = same & ~eye
        pairs = torch.where(
            pairs.any(dim=1, keepdim=True), pairs, eye
        ).float()  # (teacher, student)
        s_cls = [self.cls_head(out.cls_layers[-1])]
        for view in locals_:
            local_out = self.encoder(view)
            assert local_out.cls_layers is not None
            s_cls.append(self.cls_head(local_out.cls_layers[-1]))
        terms = []
        for i, student in enumerate(s_cls):
            ce = distill(
                student[None], t_cls[:, None], cls_center, c.student_temp, c.teacher_temp
            )  # (teacher, student)
            weight = pairs if i == 0 else same.float()  # a local crop: every global view (DINO)
            terms.append((ce * weight).sum() / weight.sum())
        global_loss = torch.stack(terms).mean()

        # local: corrupted patch tokens → the teacher's tokens of the clean view
        s_patch = self.patch_head(out.last)
        ce_patch = distill(s_patch, t_patch, patch_center, c.student_temp, c.teacher_temp)
        local_loss = masked_mean(ce_patch, valid)

        with torch.no_grad():
            probs = F.softmax((t_cls.float() - cls_center) / c.teacher_temp, dim=-1)
            entropy = float(-(probs * probs.clamp_min(1e-12).log()).sum(-1).mean())

        loss = (
            c.reconstruction_weight * reconstruction
            + c.global_weight * global_loss
            + c.local_weight * local_loss
        )
        std, rank = collapse_metrics(out.cls_layers[-1])
        return ObjectiveOutput(
            loss=loss,
            logs={
                "reconstruction_loss": float(reconstruction.detach()),
                "global_loss": float(global_loss.detach()),
                "local_loss": float(local_loss.detach()),
                "embedding_std": std,
                "effective_rank": rank,
                "teacher_entropy": entropy,
            },
        )
