"""Sylber (``sylber``): Cho et al., ICLR 2025, "Sylber: Syllabic Embedding Representation of
Speech from Raw Audio" — self-segmentation distillation.

A teacher encodes the **clean** clip; an unsupervised boundary detector cuts the teacher's frames
into segments (:func:`similarity_segment_ids`); every frame's target is the mean teacher feature
of its segment (frames in no segment — silence — have target zero); the student, which sees the
clip **mixed** with another item of the batch or with noise (:func:`mix_waveforms`), regresses
these targets at every non-padding frame (mean squared error). The student learns features that
are constant within a syllable-like segment and near zero in silence, so that one greedy pass
over its frames segments speech (``echoic segment``).

* **Stage 1** (``stage: 1``): the teacher is frozen — an echoic model directory or registered
  name (``teacher``; Sylber: SD-HuBERT), or, when None, a seeded random copy of the student's
  architecture (tests and smoke runs only). When the teacher has the student's architecture the
  student starts from its weights (``init_student``, Sylber's stage 1); otherwise a linear head
  maps the student's width to the teacher's.
* **Stage 2** (``stage: 2``): self-distillation — the teacher is an EMA of the student
  (:class:`~echoic.objectives.base.AnnealedEmaTeacher`); both start from ``teacher`` (the stage-1
  model, e.g. ``stage:stage1`` in an iteration recipe) and the segments come from the EMA's own
  features.

Segmentation (both stages): a frame is silence when its norm is below ``norm_threshold`` (or
``relative_norm_threshold`` × the clip's median frame norm, whichever is higher); a speech frame
joins the current segment while its cosine similarity to the segment's running mean is at least
the merge threshold, which is drawn per batch from ``merge_threshold`` (Sylber's stage 2:
U(0.8, 0.9)). This is the greedy pass of Sylber's segmenter batched in torch for the training
step; :mod:`echoic.embed.segment` holds the numpy version (with boundary refinement) used at
inference — the objectives layer may not import ``echoic.embed``.

Augmentation (Sylber, after WavLM): with probability ``mix_prob`` (0.2) an item is mixed, with
another item of the batch (another clip; probability ``speech_mix_ratio``, 0.25), present over the
clip's last or first part only (it starts or stops at a fraction drawn from ``speech_offset``,
[0, 0.7]), or else with noise; at an SNR drawn uniformly from ``speech_snr_db`` / ``noise_snr_db``.

Defaults follow the released code (``sylber_base*.yaml``: mix probability, ratio, offsets; merge
range of stage 2; lr 1e-4 → 5e-5 and AdamW betas (0.9, 0.95) are recipe settings). Deviations:

* stage 1's segments come from the greedy pass on the teacher's features, not from SD-HuBERT's
  min-cut segments computed offline; no boundary refinement during training (the released
  trainer refines each item's boundaries in numpy); the silence threshold is fixed or relative
  to the clip's median norm, not Sylber's online two-Gaussian estimate of speech / silence norms;
* stage 2's teacher is an annealed EMA (``ema_decay`` → ``ema_end_decay``); the released stage-2
  config holds it at its start (decay 1.0: set both to 1.0 to reproduce that);
* non-speech interference is white Gaussian noise (Sylber: the DNS-Challenge noise set); SNRs
  are drawn uniformly in dB over the range Sylber's uniform amplitude scales span (0.05–0.7 of
  the clip for noise, 0.05–0.2 for speech), relative to the clip's RMS;
* the loss is a mean over channels (Sylber sums them: ``D`` × this loss) and over non-padding
  frames; the student's output may pass a linear head when the teacher is wider or narrower.

Works with waveform encoders of 1-D frame tokens (``wav_*``, ``hubert_*``). Recipes:
``configs/pretrain/sylber_{test,tiny}.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from echoic.encoders.base import Encoder, EncoderSpec
from echoic.errors import ConfigError
from echoic.objectives.base import (
    AnnealedEmaTeacher,
    Objective,
    device_generator,
    frozen_copy,
    masked_mean,
    register,
)
from echoic.objectives.teachers import load_teacher
from echoic.types import Features, ObjectiveOutput, TrainBatch

__all__ = [
    "SylberConfig",
    "SylberObjective",
    "mix_waveforms",
    "segment_mean_targets",
    "similarity_segment_ids",
    "speech_frames",
]


def _range(value: list[float], name: str, low: float, high: float) -> None:
    if len(value) != 2 or not low <= value[0] <= value[1] <= high:
        raise ConfigError(
            f"sylber.{name} must be [low, high] with {low} <= low <= high <= {high}; found "
            f"{value!r}."
        )


@dataclass
class SylberConfig:
    """Settings of :class:`SylberObjective` (module docstring).

    stage: 1 (frozen teacher) or 2 (EMA self-distillation).
    teacher: stage 1: the frozen teacher (model directory or registered name; None: a random copy
        of the student's architecture seeded ``teacher_seed``); stage 2: the model student and
        EMA teacher start from (None: the student's own initialisation).
    teacher_layer: the teacher layer whose frames are segmented and averaged (-1: the last).
    init_student: stage 1: start the student from a given teacher of its architecture.
    merge_threshold: [low, high] cosine range the per-batch merge threshold is drawn from.
    norm_threshold / relative_norm_threshold: silence below this frame norm / this fraction of
        the clip's median frame norm (0: off).
    mix_prob / speech_mix_ratio / speech_offset / speech_snr_db / noise_snr_db: augmentation.
    ema_*: stage 2's teacher decay, annealed over ``ema_anneal_end_step`` updates.
    """

    stage: int = 1
    teacher: str | None = None
    teacher_layer: int = -1
    teacher_seed: int = 0
    init_student: bool = True
    merge_threshold: list[float] = field(default_factory=lambda: [0.8, 0.9])
    norm_threshold: float = 0.0
    relative_norm_threshold: float = 0.0
    mix_prob: float = 0.2
    speech_mix_ratio: float = 0.25
    speech_offset: list[float] = field(default_factory=lambda: [0.0, 0.7])
    speech_snr_db: list[float] = field(default_factory=lambda: [14.0, 26.0])
    noise_snr_db: list[float] = field(default_factory=lambda: [3.0, 26.0])
    ema_decay: float = 0.999
    ema_end_decay: float = 0.9999
    ema_anneal_end_step: int = 10_000

    def __post_init__(self) -> None:
        if self.stage not in (1, 2):
            raise ConfigError(f"sylber.stage must be 1 or 2; found {self.stage!r}.")
        _range(self.merge_threshold, "merge_threshold", -1.0, 1.0)
        _range(self.speech_offset, "speech_offset", 0.0, 1.0)
        _range(self.speech_snr_db, "speech_snr_db", -100.0, 100.0)
        _range(self.noise_snr_db, "noise_snr_db", -100.0, 100.0)
        for name in ("mix_prob", "speech_mix_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"sylber.{name} is a probability; found {getattr(self, name)}.")
        if self.norm_threshold < 0 or self.relative_norm_threshold < 0:
            raise ConfigError(
                "sylber.norm_threshold and relative_norm_threshold must be >= 0 (0: no silence "
                f"detection); found {self.norm_threshold}, {self.relative_norm_threshold}."
            )
        if not 0.0 <= self.ema_decay <= self.ema_end_decay <= 1.0:
            raise ConfigError(
                "sylber needs 0 <= ema_decay <= ema_end_decay <= 1; found "
                f"{self.ema_decay}, {self.ema_end_decay}."
            )


# ------------------------------------------------------------------------------ segmentation
def _floating(x: torch.Tensor) -> torch.Tensor:
    """``x`` as float64 if it is, else float32 (bf16 / fp16 activations are summed in fp32)."""
    return x if x.dtype == torch.float64 else x.float()


def speech_frames(
    frames: torch.Tensor, valid: torch.Tensor, norm_threshold: float, relative: float
) -> torch.Tensor:
    """``(B, T)`` True on valid frames whose L2 norm reaches the silence threshold:
    ``max(norm_threshold, relative × median norm of the item's valid frames)`` (numpy's median,
    interpolated); every valid frame when both are 0. ``frames`` ``(B, T, D)``, ``valid`` ``(B, T)``."""
    if norm_threshold <= 0 and relative <= 0:
        return valid.clone()
    norms = _floating(frames).norm(dim=-1)
    threshold = torch.full_like(norms[:, 0], norm_threshold)
    if relative > 0:
        median = torch.nanquantile(norms.masked_fill(~valid, float("nan")), 0.5, dim=1)
        threshold = torch.maximum(threshold, relative * median.nan_to_num(0.0))
    return valid & (norms >= threshold[:, None])


@torch.no_grad()
def similarity_segment_ids(
    frames: torch.Tensor, speech: torch.Tensor, merge_threshold: float | torch.Tensor
) -> torch.Tensor:
    """Sylber's greedy pass over ``frames`` ``(B, T, D)``, all items at once: ``(B, T)`` int64
    segment index of every frame (0, 1, … in time order per item), -1 where ``speech`` is False.

    A speech frame joins the open segment when its cosine similarity to the segment's mean (the
    same as to its sum) is at least ``merge_threshold`` (a float, or ``(B,)`` one per item) and
    opens a new one otherwise; a non-speech frame closes it. One pass over time, O(T·D) per
    item; :func:`echoic.embed.segment.similarity_segments` (``refine=False``) is the numpy one."""
    batch, steps, _ = frames.shape
    x = _floating(frames)
    threshold = torch.as_tensor(merge_threshold, dtype=x.dtype, device=x.device).expand(batch)
    total = torch.zeros_like(x[:, 0])  # sum of the open segment's frames; 0 when none is open
    current = torch.full((batch,), -1, dtype=torch.long, device=x.device)
    ids = torch.full((batch, steps), -1, dtype=torch.long, device=x.device)
    for t in range(steps):
        frame, here = x[:, t], speech[:, t]
        denom = total.norm(dim=-1) * frame.norm(dim=-1)
        cosine = (total * frame).sum(-1) / denom.clamp_min(torch.finfo(x.dtype).tiny)
        join = here & (denom > 0) & (cosine >= threshold)
        start = here & ~join
        current = current + start.long()
        total = torch.where(join[:, None], total + frame, torch.where(start[:, None], frame, 0.0))
        ids[:, t] = torch.where(here, current, -1)
    return ids


def segment_mean_targets(frames: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``(B, T, D)`` float32: every frame replaced by the mean of ``frames`` ``(B, T, D)`` over
    its segment (``ids`` ``(B, T)`` from :func:`similarity_segment_ids`); zero where ``ids`` is -1."""
    batch, _, width = frames.shape
    slots = int(ids.max()) + 2 if ids.numel() else 1  # slot 0: silence
    index = (ids + 1).clamp_min(0)
    sums = frames.new_zeros(batch, slots, width, dtype=torch.float32)
    sums.scatter_add_(1, index[..., None].expand(-1, -1, width), frames.float())
    counts = torch.zeros(batch, slots, dtype=torch.float32, device=frames.device)
    counts.scatter_add_(1, index, torch.ones_like(index, dtype=torch.float32))
    means = sums / counts.clamp_min(1.0)[..., None]
    means[:, 0] = 0.0
    return torch.gather(means, 1, index[..., None].expand(-1, -1, width))


# ------------------------------------------------------------------------------ augmentation
def _uniform(low_high: list[float], n: int, generator: torch.Generator) -> torch.Tensor:
    low, high = low_high
    return low + (high - low) * torch.rand(n, generator=generator)


def mix_waveforms(
    features: Features,
    clip_index: torch.Tensor,
    config: SylberConfig,
    generator: torch.Generator,
) -> tuple[Features, torch.Tensor]:
    """Waveform features ``(B, ..., S)`` with ``config.mix_prob`` of the items mixed (module
    docstring) and ``(B,)`` bool, True on mixed items. Interference is scaled to an SNR relative
    to the item's RMS over its valid samples; samples beyond an item's length stay 0. Speech
    interference is another item of another clip (noise when the batch has no other clip)."""
    values = features.values
    batch, samples, device = values.shape[0], values.shape[-1], values.device
    c = config
    mixed = torch.rand(batch, generator=generator) < c.mix_prob
    speech = torch.rand(batch, generator=generator) < c.speech_mix_ratio
    snr = torch.where(
        speech,
        _uniform(c.speech_snr_db, batch, generator),
        _uniform(c.noise_snr_db, batch, generator),
    )
    offset = _uniform(c.speech_offset, batch, generator)
    from_end = torch.rand(batch, generator=generator) < 0.5
    scores = torch.rand(batch, batch, generator=generator)
    noise = torch.randn(values.shape, generator=device_generator(generator, device), device=device)
    if not bool(mixed.any()):
        return features, mixed
    other_clip = clip_index.cpu()[:, None] != clip_index.cpu()[None, :]
    partner = scores.masked_fill(~other_clip, -1.0).argmax(1).to(device)
    speech = (speech & other_clip.any(1)).to(device)  # no other clip: noise instead

    position = torch.arange(samples, device=device)
    valid = position[None, :] < features.lengths[:, None]  # (B, S)
    shape = (batch,) + (1,) * (values.ndim - 1)
    valid_full = valid.reshape(batch, *([1] * (values.ndim - 2)), samples)

    def rms(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        power = (x.float() ** 2 * mask).flatten(1).sum(1)
        count = mask.expand_as(x).flatten(1).sum(1).clamp_min(1)
        return (power / count).sqrt().clamp_min(1e-8)

    other = values[partner] * valid_full[partner]
    fraction = position[None, :] / features.lengths[:, None].clamp_min(1)
    o = offset.to(device)[:, None]
    window = torch.where(from_end.to(device)[:, None], fraction >= o, fraction < 1.0 - o)
    other = other * window.reshape(valid_full.shape)
    interference = torch.where(speech.reshape(shape), other, noise)
    clean_rms = rms(values, valid_full)
    own_rms = torch.where(speech, rms(values[partner], valid_full[partner]), 1.0)  # noise: 1
    gain = clean_rms / own_rms * torch.pow(10.0, -snr.to(device) / 20.0)
    gain = (gain * mixed.to(device)).reshape(shape).to(values.dtype)
    out = (values + gain * interference) * valid_full
    return Features(out, features.lengths, features.hop_s, features.first_centre_s), mixed


# ------------------------------------------------------------------------------ objective
def _same_architecture(a: nn.Module, b: nn.Module) -> bool:
    if type(a) is not type(b) or getattr(a, "config", None) != getattr(b, "config", None):
        return False
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape for k in sa)


@register("sylber")
class SylberObjective(AnnealedEmaTeacher, Objective):
    """Teacher on the clean clip → greedy segments → segment-mean targets; the student on the
    mixed clip regresses them at every frame (stage 1: frozen teacher; stage 2: EMA)."""

    config_class = SylberConfig

    @classmethod
    def check_encoder(cls, spec: EncoderSpec) -> None:
        if spec.input != "waveform" or spec.layout != "frames":
            raise ConfigError(
                "sylber segments a 1-D sequence of frames and mixes waveforms (Sylber learns "
                f"from raw audio); this encoder reads {spec.input} with {spec.layout} tokens. "
                "Use a waveform encoder (wav_test, wav_tiny, hubert_test) with the waveform "
                "frontend."
            )

    def __init__(self, encoder: Encoder, config: SylberConfig) -> None:
        super().__init__(encoder, config)
        where = f"sylber stage {config.stage} teacher"
        given = None
        if config.teacher is not None:
            given = load_teacher(config.teacher, encoder, config.teacher_seed, where)
        self.head: nn.Module = nn.Identity()
        if config.stage == 2:
            if given is not None:
                if not _same_architecture(given, encoder):
                    raise ConfigError(
                        f"{where}: stage 2 starts the student from {config.teacher!r}, which must "
                        "have the student's encoder and settings (the stage-1 model); it does "
                        "not. Use the same model section as stage 1."
                    )
                encoder.load_state_dict(given.state_dict())
            self.ema = cast(Encoder, frozen_copy(encoder))
            self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
            teacher_model: Encoder = self.ema
        else:
            if given is None:
                given = load_teacher(None, encoder, config.teacher_seed, where)
            elif config.init_student and _same_architecture(given, encoder):
                encoder.load_state_dict(given.state_dict())
            self.frozen_teacher = given
            teacher_model = given
            if given.spec.width != encoder.spec.width:
                self.head = nn.Linear(encoder.spec.width, given.spec.width)
        depth = teacher_model.spec.depth + 1
        if not -depth <= config.teacher_layer < depth:
            raise ConfigError(
                f"{where}: teacher layer {config.teacher_layer} does not exist; the teacher has "
                f"layers 0 … {depth - 1} (or -1 for the last)."
            )

    def target_encoder(self) -> Encoder:
        """The encoder that gives the targets (frozen teacher or EMA)."""
        return cast(Encoder, self.ema if self.config.stage == 2 else self.frozen_teacher)

    def teacher(self) -> nn.Module | None:  # type: ignore[override]  # stage 1: none (frozen)
        return self.ema if self.config.stage == 2 else None

    def train(self, mode: bool = True) -> SylberObjective:
        super().train(mode)
        self.target_encoder().eval()
        return self

    @torch.no_grad()
    def after_optimizer_step(self) -> dict[str, float]:
        return super().after_optimizer_step() if self.config.stage == 2 else {}

    @torch.no_grad()
    def targets(
        self, features: Features, padding: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Teacher frames of the clean clip → ``(B, N, Dt)`` segment-mean targets, ``(B, N)``
        segment ids and the merge threshold drawn."""
        c = self.config
        teacher = self.target_encoder()
        teacher.eval()
        frames = teacher(features).layers[c.teacher_layer].float()
        low, high = c.merge_threshold
        threshold = low + (high - low) * float(torch.rand((), generator=generator))
        speech = speech_frames(frames, ~padding, c.norm_threshold, c.relative_norm_threshold)
        ids = similarity_segment_ids(frames, speech, threshold)
        return segment_mean_targets(frames, ids), ids, threshold

    def forward(self, batch: TrainBatch, generator: torch.Generator) -> ObjectiveOutput:
        """Loss: mean squared error of the student's frames (mixed input) to the segment means of
        the teacher's frames (clean input), over non-padding frames."""
        features = batch.features
        padding = self.encoder.token_padding(features)
        target, ids, threshold = self.targets(features, padding, generator)
        student_in, mixed = mix_waveforms(features, batch.clip_index, self.config, generator)
        pred = self.head(self.encoder(student_in).last).float()
        error = F.mse_loss(pred, target, reduction="none").mean(-1)
        valid = ~padding
        loss = masked_mean(error, valid)
        n_segments = (ids.max(1).values + 1).sum()
        hop_s = features.hop_s * self.encoder.spec.stride
        seconds = valid.sum() * hop_s
        logs = {
            "segments_per_s": float(n_segments / seconds.clamp_min(1e-9)),
            "silence_fraction": float(masked_mean((ids < 0).float(), valid)),
            "mixed_fraction": float(mixed.float().mean()),
            "merge_threshold": threshold,
            "target_norm": float(masked_mean(target.norm(dim=-1), valid)),
        }
        return ObjectiveOutput(loss=loss, logs=logs)
