"""Discrete targets of the masked-prediction objectives (``beats``, ``hubert``): frames on the
student's token grid → a frozen tokenizer's ids.

An objective that predicts ids owns a :class:`DiscreteTargets` module built from the fields of
:class:`DiscreteTargetsConfig` (its config inherits them):

* ``target_frames`` says what the tokenizer reads for every token of the student's full grid
  (:func:`token_frames`): ``"patches"`` — the input values the token covers
  (``encoder.token_targets``: a ViT's patch pixels, a waveform frame's samples; BEATs' tokenizer
  input); ``"mfcc"`` — 13 MFCCs + Δ + ΔΔ of the token's time step, normalised per clip (HuBERT's
  first iteration; :func:`mfcc_steps`); ``"logmel"`` — the 40-band log-mel of the token's time
  step, normalised per clip (the input of MERT's stand-in codec; :func:`log_mel_steps`);
  ``"layer"`` — layer ``teacher_layer`` of a frozen ``teacher`` model (an earlier iteration;
  HuBERT's second);
* ``tokenizer``: the directory of a fitted tokenizer (``echoic tokenizer fit`` or a ``tokenizer``
  stage of an iteration recipe, :mod:`echoic.train.stages`); ``None`` builds a
  ``random_projection`` quantiser in place from ``tokenizer_seed`` (BEATs' iteration 0,
  BEST-RQ): nothing is fitted, the same seed always gives the same ids.

The tokenizer and the teacher are frozen (no ``requires_grad`` parameter, always in eval mode)
and are saved in the objective's state, so a checkpoint is self-contained. The same
:func:`token_frames` feeds the tokenizer stages, so a tokenizer is always fitted on the frames it
is later applied to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from echoic.checkpoint import load_dir
from echoic.encoders.base import Encoder, EncoderSpec, time_token_padding
from echoic.errors import ConfigError
from echoic.features.logmel import mel_filter_bank
from echoic.tokenizers import Tokenizer, build_tokenizer, load_tokenizer
from echoic.tokenizers.frames import mfcc_frames, stacked_frames
from echoic.types import Features

__all__ = [
    "FRAME_KINDS",
    "DiscreteTargets",
    "DiscreteTargetsConfig",
    "grid_time_index",
    "log_mel_steps",
    "mfcc_steps",
    "token_frames",
]

FRAME_KINDS = ("patches", "mfcc", "logmel", "layer")
MFCC_VALUES = 39
WAVEFORM_MELS = 40


@dataclass
class DiscreteTargetsConfig:
    """Where the ids come from (fields shared by every discrete-target objective's config).

    tokenizer: a fitted tokenizer directory, or None for a seeded ``random_projection`` of
        ``codebook_size`` codes of ``codebook_dim`` dims built in place (``tokenizer_seed``).
    target_frames: ``"patches"``, ``"mfcc"``, ``"logmel"`` or ``"layer"`` (module docstring).
    teacher / teacher_layer: the model directory and layer index for ``target_frames: layer``;
        the teacher must read the same features and have the student's token grid.
    """

    tokenizer: str | None = None
    target_frames: str = "patches"
    teacher: str | None = None
    teacher_layer: int = -1
    codebook_size: int = 1024
    codebook_dim: int = 16
    tokenizer_seed: int = 0


def grid_time_index(spec: EncoderSpec, grid: tuple[int, int]) -> torch.Tensor:
    """``(N,)`` time step of every token of a full grid, in the encoder's flatten order."""
    n_freq, n_time = grid
    tokens = torch.arange(n_freq * n_time)
    return tokens // n_freq if spec.flatten == "time_major" else tokens % n_time


def _log_mel_of_waveform(
    values: torch.Tensor, sample_rate: int, win: int, hop: int
) -> torch.Tensor:
    """``(B, S)`` samples → ``(B, 40, 1 + (S - win) // hop)`` natural-log mel energies of Hann
    windows of ``win`` samples every ``hop`` (no centring: frame ``t`` reads ``[t hop, t hop +
    win)``, a waveform encoder's token ``t``)."""
    n_fft = 1 << max(0, math.ceil(math.log2(win)))
    if values.shape[-1] < win:
        return values.new_zeros(values.shape[0], WAVEFORM_MELS, 0)
    spectrum = torch.stft(
        values.float(),
        n_fft,
        hop_length=hop,
        win_length=win,
        window=torch.hann_window(win, device=values.device),
        center=False,
        return_complex=True,
    )
    power = spectrum.abs().square()  # (B, n_fft // 2 + 1, T)
    bank = mel_filter_bank(n_fft // 2 + 1, WAVEFORM_MELS, sample_rate).to(values.device)
    return torch.log(torch.einsum("bft,fm->bmt", power, bank) + 1e-6)


def _per_clip_steps(features: Features, spec: EncoderSpec, mfcc: bool) -> torch.Tensor:
    """``(B, n_time, 39 | 40)`` MFCC + Δ + ΔΔ (``mfcc``) or log-mel of every time step of the
    grid, standardised per clip over its valid steps (cepstral mean and variance normalisation).

    Spectral features are taken as the log-mel (channels averaged); for a waveform encoder a
    40-band log-mel is computed with one 25-ms-like window per token (``receptive`` samples,
    ``stride`` apart), so frame ``t`` reads exactly token ``t``'s samples."""
    n_time = spec.time_steps(features.n_frames)
    values = features.values
    if spec.input == "waveform":
        samples = values.reshape(values.shape[0], -1, values.shape[-1]).mean(1)
        rate = round(1.0 / features.hop_s)
        log_mel = _log_mel_of_waveform(samples, rate, spec.receptive, spec.stride)
        if mfcc and log_mel.shape[-1]:
            steps = mfcc_frames(log_mel, 1, 1)
        else:
            steps = log_mel.transpose(1, 2)
    else:
        log_mel = (values.mean(1) if values.ndim == 4 else values).float()
        if mfcc:
            steps = mfcc_frames(log_mel, spec.stride, spec.receptive)
        else:  # each step's frames averaged (zeros past the end)
            windows = stacked_frames(log_mel, spec.stride, spec.receptive)
            steps = windows.reshape(*windows.shape[:2], spec.receptive, -1).mean(2)
    steps = steps[:, :n_time]
    if steps.shape[1] < n_time:  # never for the registered encoders; pad defensively
        steps = nn.functional.pad(steps, (0, 0, 0, n_time - steps.shape[1]))
    valid = (~time_token_padding(spec, features.lengths, n_time)).to(steps.dtype)[..., None]
    count = valid.sum(1, keepdim=True).clamp_min(1.0)
    mean = (steps * valid).sum(1, keepdim=True) / count
    var = ((steps - mean).square() * valid).sum(1, keepdim=True) / count
    return (steps - mean) / (var + 1e-5).sqrt()


def mfcc_steps(features: Features, spec: EncoderSpec) -> torch.Tensor:
    """``(B, n_time, 39)`` MFCC + Δ + ΔΔ of every time step of the grid, standardised per clip
    (:func:`_per_clip_steps`)."""
    return _per_clip_steps(features, spec, mfcc=True)


def log_mel_steps(features: Features, spec: EncoderSpec) -> torch.Tensor:
    """``(B, n_time, 40)`` log-mel of every time step of the grid (a spectral frontend's own
    bins, averaged over the step's frames), standardised per clip (:func:`_per_clip_steps`)."""
    return _per_clip_steps(features, spec, mfcc=False)


def token_frames(kind: str, features: Features, encoder: Encoder, layer: int = -1) -> torch.Tensor:
    """``(B, N, D)`` float32 frames of ``kind`` for every token of ``encoder``'s full grid.

    ``"patches"``: ``encoder.token_targets``; ``"mfcc"`` / ``"logmel"``: :func:`mfcc_steps` /
    :func:`log_mel_steps` of each token's time step; ``"layer"``: ``encoder(features).layers[layer]`` (``encoder`` is then the teacher)."""
    spec = encoder.spec
    if kind == "patches":
        return encoder.token_targets(features).float()
    if kind in ("mfcc", "logmel"):
        grid = encoder.grid(features.n_frames)
        time_index = grid_time_index(spec, grid).to(features.values.device)
        steps = mfcc_steps if kind == "mfcc" else log_mel_steps
        return steps(features, spec)[:, time_index]
    if kind == "layer":
        return encoder(features).layers[layer].float()
    raise ConfigError(f"target_frames must be one of {FRAME_KINDS}; found {kind!r}.")


def frame_dim(kind: str, spec: EncoderSpec) -> int:
    """Values per frame of ``kind`` for an encoder of ``spec`` (the teacher's for ``layer``)."""
    if kind == "patches":
        return spec.token_input_size
    if kind == "mfcc":
        return MFCC_VALUES
    if kind == "logmel":
        return WAVEFORM_MELS if spec.input == "waveform" else spec.n_bins
    if kind == "layer":
        return spec.width
    raise ConfigError(f"target_frames must be one of {FRAME_KINDS}; found {kind!r}.")


def _same_grid(student: EncoderSpec, teacher: EncoderSpec) -> bool:
    keys = ("input", "n_bins", "freq_tokens", "stride", "receptive", "partial_last", "flatten")
    return all(getattr(student, k) == getattr(teacher, k) for k in keys)


def frozen_tokenizer(
    path: str | None, dim: int, in_place: dict[str, Any], kind: str | None, fix: str
) -> Tokenizer:
    """The tokenizer a target maker holds: the fitted one at ``path`` — checked to read frames of
    ``dim`` values (and of ``kind``, when it records one; ``fix`` says what to do otherwise) — or,
    without ``path``, a seeded random projection built in place with ``in_place`` settings
    (nothing to fit: the frames come normalised)."""
    if path:
        fitted = load_tokenizer(path)
        recorded = fitted.source.get("target_frames")
        if fitted.input_dim != dim or (kind is not None and recorded not in (None, kind)):
            raise ConfigError(
                f"tokenizer {path} reads frames of {fitted.input_dim} values "
                f"({recorded or 'unknown kind'}); it is fed {kind or 'teacher'} frames of {dim} "
                f"values. {fix}"
            )
        return fitted
    built = build_tokenizer("random_projection", dim, {**in_place, "standardize": False})
    built.fitted.fill_(True)
    return built


class FrozenTargets(nn.Module):
    """Base of the target makers (a tokenizer, and maybe a teacher): after :meth:`freeze` no
    parameter takes gradients and the module stays in eval mode (no dropout, no codebook
    updates), whatever the trainer asks."""

    tokenizer: Tokenizer

    def freeze(self) -> None:
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        return self.tokenizer.codebook_sizes

    def train(self, mode: bool = True) -> FrozenTargets:
        return super().train(False)


class DiscreteTargets(FrozenTargets):
    """Frozen tokenizer (+ teacher): ``(features, student) → ids (B, N, n_codebooks)``."""

    def __init__(self, config: DiscreteTargetsConfig, spec: EncoderSpec) -> None:
        super().__init__()
        kind = config.target_frames
        if kind not in FRAME_KINDS:
            raise ConfigError(f"target_frames must be one of {FRAME_KINDS}; found {kind!r}.")
        self.kind = kind
        self.layer = config.teacher_layer
        self.teacher: Encoder | None = None
        source_spec = spec
        if kind == "layer":
            if not config.teacher:
                raise ConfigError(
                    "target_frames: layer reads a teacher model's layer; set teacher to a model "
                    "directory (e.g. the export of an earlier iteration)."
                )
            teacher = load_dir(config.teacher).encoder
            if not _same_grid(spec, teacher.spec):
                raise ConfigError(
                    f"teacher {config.teacher} must read the student's features and give its "
                    f"token grid; found teacher {teacher.spec}, student {spec}. Use a teacher "
                    "of the same encoder family and frontend."
                )
            self.teacher = teacher
            source_spec = teacher.spec
        in_place = {
            "codebook_size": config.codebook_size,
            "codebook_dim": config.codebook_dim,
            "seed": config.tokenizer_seed,
        }
        dim = frame_dim(kind, source_spec)
        fix = (
            "Fit the tokenizer on the frames the objective feeds it (a tokenizer stage with the "
            "same input)."
        )
        self.tokenizer = frozen_tokenizer(config.tokenizer, dim, in_place, kind, fix)
        self.freeze()

    @torch.no_grad()
    def forward(self, features: Features, student: Encoder) -> torch.Tensor:
        """``(B, N, n_codebooks)`` int64 ids of every token of ``student``'s full grid."""
        source = self.teacher if self.teacher is not None else student
        frames = token_frames(self.kind, features, source, self.layer)
        padding = student.token_padding(features)
        return self.tokenizer(frames, padding)
