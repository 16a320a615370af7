"""MERT (``mert``): Li et al. 2024, "MERT: Acoustic Music Understanding Model with Large-Scale
Self-supervised Training" (ICLR).

HuBERT-style masked prediction over a waveform encoder at 24 kHz (the recipes set the waveform
frontend's ``sample_rate: 24000``; a 320-sample conv stride then gives MERT's 75 tokens a second)
with two teachers, both computed on every batch from the clean clip:

* **acoustic teacher** — the ids of a residual-VQ codec for every token, ``n_codebooks``
  codebooks (MERT: EnCodec's 8 × 1024 at 6 kbps). Each codebook has its own head (a projection
  to ``final_dim`` scored by cosine similarity against one learned embedding per id, over
  ``logit_temperature``; MERT's untied ``final_proj``), and the loss is the cross-entropy of the
  hidden, non-padding tokens' ids summed over codebooks (fairseq's HuBERT criterion);
* **musical teacher** — the constant-Q transform of the token's time step
  (:class:`~echoic.features.cqt.ConstantQ`: 84 bins, 12 per octave from C1, L1-normalised
  kernels, magnitude, one frame per token centred on its receptive field), reconstructed from the
  hidden tokens by a linear head with a mean squared error.

``loss = ce_weight · CE + cqt_weight · MSE`` (MERT: 1 and 1). Masking is HuBERT's span masking
(:func:`~echoic.objectives.teachers.span_masked_forward`): ``mask_prob`` is the probability that
a step starts a span of ``mask_length`` (MERT's ``mask_prob: 0.8, mask_length: 5`` in fairseq's
convention, which divides by the span length: 0.16 here, about 58 % of the steps hidden).

**In-batch noise mixture** (MERT's augmentation): with probability ``mix_prob`` an item hears,
on top of itself, ``mix_segments`` (1 … 3) segments of ``mix_segment_s`` (0.5 … 1 s) cut from
other clips of the batch at random places, each at a gain drawn from ``mix_gain_db``; its
targets still come from the clean clip.

**The codec.** No pretrained EnCodec is available offline, so the acoustic teacher is an echoic
``rvq`` tokenizer fitted on the corpus: on the 40-band log-mel of every token's window,
standardised per clip (``target_frames: logmel``, :func:`~echoic.objectives.discrete.token_frames`),
by a tokenizer stage of the recipe (``configs/pretrain/mert_tiny.yaml``: fit, then pretrain, one
command); ``tokenizer`` names its directory. It is a codec's quantiser without the codec: RVQ
codebooks over spectral frames, no learnt encoder / decoder. Without a ``tokenizer`` a seeded
multi-codebook random projection of those frames (``n_codebooks`` × ``codebook_size``,
BEST-RQ-like) is built in place, for tests and smoke runs.

Deviations from MERT's released code (``MERT_RVQ-VAE_CQT_95M.yaml``): the codec (above); the
codec ids and the CQT are computed from the frontend's waveform (per-item normalised in the
recipes: MERT feeds raw audio to both), so the CQT is level-free; the mixture gain is drawn from
``mix_gain_db`` (MERT adds at volume 1.0 to raw audio, where clips differ in level; normalised
clips do not, so a random gain stands in for that spread) and segments come from one other clip
each (MERT: any stretch of the batch's other clips, concatenated); the mixture probability is
``mix_prob`` (MERT's code mixes when a uniform draw exceeds it, i.e. with ``1 - mixture_prob``:
the same at 0.5); no feature penalty (MERT: 10 × the L2 of the CNN features), no dropout, no
layer drop, no attention relaxation; CQT bins 84 (MERT 95M: 336, 48 per octave). Waveform frame
encoders only (``wav_*``, ``hubert_test``): mixing and both teachers read the waveform.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from echoic.encoders.base import Encoder, EncoderSpec
from echoic.errors import ConfigError
from echoic.features.cqt import C1_HZ, ConstantQ, ConstantQConfig
from echoic.objectives.base import Objective, masked_mean, register
from echoic.objectives.beats import masked_cross_entropy
from echoic.objectives.discrete import (
    FrozenTargets,
    frame_dim,
    frozen_tokenizer,
    grid_time_index,
    token_frames,
)
from echoic.objectives.teachers import span_masked_forward
from echoic.types import Features, ObjectiveOutput, TrainBatch

__all__ = ["CodebookHead", "CodecTargets", "MertConfig", "MertObjective", "mix_in_batch"]

CODEC_FRAMES = "logmel"


@dataclass
class MertConfig:
    """Settings of :class:`MertObjective` (MERT 95M defaults where they fit; module docstring).

    tokenizer: a fitted codec directory (``rvq`` on ``logmel`` frames), or None for an in-place
        seeded random projection of ``n_codebooks`` × ``codebook_size`` codes (``codebook_dim``-d,
        ``tokenizer_seed``).
    mask_prob / mask_length: span starts per step and span length (MERT: 0.8 / 5 in fairseq's
        convention = 0.16 here).
    final_dim / logit_temperature: each codebook head's projection width and cosine temperature
        (MERT: 64, 0.1).
    ce_weight / cqt_weight: weights of the codebooks' summed cross-entropy and the CQT MSE (1, 1).
    cqt_bins / cqt_bins_per_octave / cqt_fmin: the CQT targets (84, 12, C1 = 32.7 Hz).
    mix_prob / mix_segments / mix_segment_s / mix_gain_db: in-batch noise mixture (0.5, 1 … 3
        segments of 0.5 … 1 s, gain −10 … 0 dB).
    """

    tokenizer: str | None = None
    n_codebooks: int = 8
    codebook_size: int = 1024
    codebook_dim: int = 16
    tokenizer_seed: int = 0
    mask_prob: float = 0.16
    mask_length: int = 5
    final_dim: int = 64
    logit_temperature: float = 0.1
    ce_weight: float = 1.0
    cqt_weight: float = 1.0
    cqt_bins: int = 84
    cqt_bins_per_octave: int = 12
    cqt_fmin: float = C1_HZ
    mix_prob: float = 0.5
    mix_segments: list[int] = field(default_factory=lambda: [1, 3])
    mix_segment_s: list[float] = field(default_factory=lambda: [0.5, 1.0])
    mix_gain_db: list[float] = field(default_factory=lambda: [-10.0, 0.0])

    def __post_init__(self) -> None:
        if not 0.0 < self.mask_prob < 1.0 or self.mask_length < 1:
            raise ConfigError(
                "mert needs 0 < mask_prob < 1 and mask_length >= 1; found "
                f"{self.mask_prob}, {self.mask_length}."
            )
        if self.logit_temperature <= 0 or self.final_dim < 1:
            raise ConfigError(
                "mert needs logit_temperature > 0 and final_dim >= 1; found "
                f"{self.logit_temperature}, {self.final_dim}."
            )
        if min(self.ce_weight, self.cqt_weight) < 0 or self.ce_weight + self.cqt_weight == 0:
            raise ConfigError(
                "mert loss weights must be >= 0 and not both 0; found ce_weight="
                f"{self.ce_weight}, cqt_weight={self.cqt_weight}."
            )
        if not 0.0 <= self.mix_prob <= 1.0:
            raise ConfigError(f"mert.mix_prob must be in [0, 1]; found {self.mix_prob}.")
        for name in ("mix_segments", "mix_segment_s", "mix_gain_db"):
            low_high = getattr(self, name)
            if len(low_high) != 2 or low_high[0] > low_high[1]:
                raise ConfigError(
                    f"mert.{name} must be [low, high] with low <= high; found {low_high}."
                )
        if self.mix_segments[0] < 1 or self.mix_segment_s[0] <= 0:
            raise ConfigError(
                "mert mixes at least one segment of positive length: mix_segments[0] >= 1 and "
                f"mix_segment_s[0] > 0; found {self.mix_segments}, {self.mix_segment_s}."
            )


class CodecTargets(FrozenTargets):
    """Frozen codec tokenizer over ``logmel`` frames: ``(features, encoder) → ids (B, N, C)``."""

    def __init__(self, config: MertConfig, spec: EncoderSpec) -> None:
        super().__init__()
        in_place = {
            "codebook_size": config.codebook_size,
            "codebook_dim": config.codebook_dim,
            "n_codebooks": config.n_codebooks,
            "seed": config.tokenizer_seed,
        }
        fix = (
            f"Fit the mert codec with a tokenizer stage with input: {CODEC_FRAMES} "
            "(configs/pretrain/mert_tiny.yaml)."
        )
        dim = frame_dim(CODEC_FRAMES, spec)
        self.tokenizer = frozen_tokenizer(config.tokenizer, dim, in_place, CODEC_FRAMES, fix)
        self.freeze()

    @torch.no_grad()
    def forward(self, features: Features, encoder: Encoder) -> torch.Tensor:
        frames = token_frames(CODEC_FRAMES, features, encoder)
        return self.tokenizer(frames, encoder.token_padding(features))


class CodebookHead(nn.Module):
    """One codebook's head: ``(B, N, D)`` → ``(B, N, K)`` cosine logits over ``K`` id embeddings."""

    def __init__(self, width: int, final_dim: int, classes: int, temperature: float) -> None:
        super().__init__()
        self.proj = nn.Linear(width, final_dim)
        self.label_embeddings = nn.Parameter(torch.empty(classes, final_dim).normal_())
        self.temperature = temperature

    @property
    def classes(self) -> int:
        return int(self.label_embeddings.shape[0])

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        proj = F.normalize(self.proj(hidden).float(), dim=-1)
        labels = F.normalize(self.label_embeddings.float(), dim=-1)
        return proj @ labels.T / self.temperature


def _uniform(low_high: list[float], shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    low, high = float(low_high[0]), float(low_high[1])
    return low + (high - low) * torch.rand(shape, generator=g, dtype=torch.float64)


def mix_in_batch(
    features: Features, clip_index: torch.Tensor, config: MertConfig, generator: torch.Generator
) -> tuple[Features, torch.Tensor]:
    """Waveform features ``(B, ..., S)`` with MERT's in-batch noise mixture on ``mix_prob`` of
    the items, and ``(B,)`` bool, True on the mixed ones. A mixed item gets ``mix_segments``
    segments of ``mix_segment_s`` seconds, each cut at a random place from a random item of
    another clip and added at a random place at a gain of ``mix_gain_db``; segments stay inside
    both items' valid samples, so padding stays 0. The input ``features`` are left untouched."""
    values = features.values
    batch = int(values.shape[0])
    c = config
    rate = 1.0 / features.hop_s
    most = int(c.mix_segments[1])
    mixed = torch.rand(batch, generator=generator) < c.mix_prob
    counts = torch.randint(int(c.mix_segments[0]), most + 1, (batch,), generator=generator)
    scores = torch.rand(batch, most, batch, generator=generator)
    seconds = _uniform(c.mix_segment_s, (batch, most), generator)
    source_at = torch.rand(batch, most, generator=generator, dtype=torch.float64)
    target_at = torch.rand(batch, most, generator=generator, dtype=torch.float64)
    gains = torch.pow(10.0, _uniform(c.mix_gain_db, (batch, most), generator) / 20.0)
    clips = clip_index.cpu()
    other = clips[:, None] != clips[None, :]
    mixed &= other.any(1)  # an item whose batch holds no other clip hears nothing added
    if not bool(mixed.any()):
        return features, mixed
    lengths = features.lengths.cpu().tolist()
    out = values.clone()
    for b in mixed.nonzero().flatten().tolist():
        for s in range(int(counts[b])):
            j = int(scores[b, s].masked_fill(~other[b], -1.0).argmax())
            size = min(round(float(seconds[b, s]) * rate), int(lengths[b]), int(lengths[j]))
            if size < 1:
                continue
            src = min(int(float(source_at[b, s]) * (lengths[j] - size + 1)), lengths[j] - size)
            dst = min(int(float(target_at[b, s]) * (lengths[b] - size + 1)), lengths[b] - size)
            gain = float(gains[b, s])
            out[b, ..., dst : dst + size] += gain * values[j, ..., src : src + size]
    return Features(out, features.lengths, features.hop_s, features.first_centre_s), mixed


@register("mert")
class MertObjective(Objective):
    """Mixed clip, hidden spans → encoder → per-codebook codec-id heads (CE) + CQT head (MSE),
    targets from the clean clip."""

    config_class = MertConfig

    @classmethod
    def check_encoder(cls, spec: EncoderSpec) -> None:
        if spec.input != "waveform" or spec.layout != "frames":
            raise ConfigError(
                "mert mixes waveforms and computes its codec and CQT targets from the waveform "
                f"(MERT learns from raw audio); this encoder reads {spec.input} with "
                f"{spec.layout} tokens. Use a waveform encoder (wav_test, wav_tiny, hubert_test) "
                "with the waveform frontend (sample_rate: 24000 in the recipes)."
            )

    def __init__(self, encoder: Encoder, config: MertConfig) -> None:
        super().__init__(encoder, config)
        spec = encoder.spec
        width = spec.width
        self.codec = CodecTargets(config, spec)
        self.heads = nn.ModuleList(
            CodebookHead(width, config.final_dim, classes, config.logit_temperature)
            for classes in self.codec.codebook_sizes
        )
        self.cqt_head = nn.Linear(width, config.cqt_bins)
        self.mask_embedding = nn.Parameter(torch.empty(1, 1, width).uniform_())
        self._cqt: dict[int, ConstantQ] = {}  # by sample rate; fixed kernels, not state

    def train(self, mode: bool = True) -> MertObjective:
        super().train(mode)
        self.codec.train(False)
        return self

    def constant_q(self, sample_rate: int, device: torch.device) -> ConstantQ:
        """The CQT of the targets at ``sample_rate``, one frame per token (hop = the stride)."""
        if sample_rate not in self._cqt:
            c = self.config
            self._cqt[sample_rate] = ConstantQ(
                ConstantQConfig(
                    sample_rate=sample_rate,
                    hop_length=self.encoder.spec.stride,
                    fmin=c.cqt_fmin,
                    n_bins=c.cqt_bins,
                    bins_per_octave=c.cqt_bins_per_octave,
                )
            )
        return self._cqt[sample_rate].to(device)

    @torch.no_grad()
    def cqt_targets(self, features: Features) -> torch.Tensor:
        """``(B, N, cqt_bins)``: the CQT magnitude of every token's time step (channels
        averaged), each frame centred on the middle of the token's receptive field."""
        spec = self.encoder.spec
        values = features.values
        waveform = values.reshape(values.shape[0], -1, values.shape[-1]).mean(1)
        grid = self.encoder.grid(features.n_frames)
        cqt = self.constant_q(round(1.0 / features.hop_s), values.device)
        frames = cqt(waveform, n_frames=max(1, grid[1]), first_centre=spec.receptive // 2)
        time_index = grid_time_index(spec, grid).to(values.device)
        return frames.transpose(1, 2)[:, time_index]

    def forward(self, batch: TrainBatch, generator: torch.Generator) -> ObjectiveOutput:
        """Loss: summed per-codebook CE of the codec ids + MSE of the CQT, on hidden tokens."""
        c = self.config
        clean = batch.features
        ids = self.codec(clean, self.encoder)  # (B, N, C), from the clean clip
        cqt = self.cqt_targets(clean)  # (B, N, bins)
        student_in, mixed = mix_in_batch(clean, batch.clip_index, c, generator)
        out, masked, padding = span_masked_forward(
            self.encoder, student_in, self.mask_embedding, c.mask_prob, c.mask_length, generator
        )
        valid = masked & ~padding
        hidden = out.last
        ce = hidden.new_zeros((), dtype=torch.float32)
        accuracy = 0.0
        for book, head in enumerate(self.heads):
            logits = head(hidden)[:, :, None]  # (B, N, 1, K)
            book_ce, book_accuracy = masked_cross_entropy(logits, ids[..., book : book + 1], valid)
            ce = ce + book_ce
            accuracy += float(book_accuracy) / len(self.heads)
        prediction = self.cqt_head(hidden).float()
        mse = masked_mean((prediction - cqt.float()).square().mean(-1), valid)
        loss = c.ce_weight * ce + c.cqt_weight * mse
        logs = {
            "codec_ce": float(ce.detach()),
            "codec_ce_per_codebook": float(ce.detach()) / len(self.heads),
            "codec_accuracy": accuracy,
            "cqt_mse": float(mse.detach()),
            "masked_fraction": float(masked_mean(masked.float(), ~padding)),
            "mixed_fraction": float(mixed.float().mean()),
        }
        return ObjectiveOutput(loss=loss, logs=logs)
