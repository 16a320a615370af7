"""What the audio–text objectives (``clap``, ``slap``) share: the text tower, pooling, masking,
the captions tokenizer for the data workers, and the joint-model export.

A batch of such an objective carries one tokenized caption per clip (``TrainBatch.text``, built
by :mod:`echoic.train.paired` when ``data.captions`` is set). Each item (one crop of a clip) is
paired with its clip's caption; the methods take one crop per clip (``data.views: 1``).

Audio side: the student encoder's last layer pooled into one vector (``pool``: ``mean`` over
non-padding tokens (default), ``cls``, ``mean+max``) after a light SpecAugment-style masking of the
input, drawn from the step's generator: ``time_masks`` spans of up to ``time_mask_max`` of each
item's valid frames and (spectrogram encoders) ``freq_masks`` bands of up to ``freq_mask_max`` of
the bins are set to 0, the normalised features' mean (a waveform encoder gets the time spans on
its samples). echoic adds it to both methods as the only regulariser of small caption sets.

Text side: a registered text tower (``text``, default the frozen ``minilm``; ``text_config``
passes the tower's own settings, e.g. ``{train: lora, lora_rank: 8}``); frozen towers run without
autograd. See ``docs/audio_text.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from echoic.encoders.base import Encoder
from echoic.errors import ConfigError
from echoic.objectives.base import Objective
from echoic.objectives.joint import POOLS, pool_tokens, save_joint
from echoic.text import TextEncoder, TokenBatch, build_text_encoder
from echoic.types import EncoderOutput, Features, TrainBatch

__all__ = [
    "AudioTextConfig",
    "AudioTextObjective",
    "CaptionTokenizer",
    "mask_features",
    "symmetric_cross_entropy",
]


@dataclass
class AudioTextConfig:
    """Settings every audio–text objective has (module docstring).

    text / text_config: the registered text tower and its config (train mode, LoRA, ...).
    pool: ``mean`` | ``cls`` | ``mean+max``. time_masks / time_mask_max, freq_masks /
    freq_mask_max: the input masking (0 masks: none). chunk_s: the exported model embeds longer
    clips in chunks of this many seconds.
    """

    text: str = "minilm"
    text_config: dict[str, Any] = field(default_factory=dict)
    pool: str = "mean"
    time_masks: int = 2
    time_mask_max: float = 0.1
    freq_masks: int = 2
    freq_mask_max: float = 0.1
    chunk_s: float = 10.0

    def __post_init__(self) -> None:
        if self.pool not in POOLS:
            raise ConfigError(f"pool must be one of {POOLS}; found {self.pool!r}.")
        if self.time_masks < 0 or self.freq_masks < 0:
            raise ConfigError("time_masks and freq_masks must be >= 0.")
        for name in ("time_mask_max", "freq_mask_max"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in [0, 1); found {getattr(self, name)}.")
        if self.chunk_s <= 0:
            raise ConfigError(f"chunk_s must be > 0 seconds; found {self.chunk_s}.")


class CaptionTokenizer:
    """Picklable ``captions -> TokenBatch`` of a tower (its prefix added), for data workers."""

    def __init__(self, tokenizer: Any, prefix: str) -> None:
        self.tokenizer, self.prefix = tokenizer, prefix

    def __call__(self, texts: list[str]) -> TokenBatch:
        batch: TokenBatch = self.tokenizer([self.prefix + t for t in texts])
        return batch


def _spans(
    valid: torch.Tensor, count: int, max_fraction: float, size: int, generator: torch.Generator
) -> torch.Tensor:
    """``(B, size)`` bool, True inside ``count`` random spans of up to ``max_fraction`` of each
    item's ``valid`` length (every draw from ``generator``, on the CPU)."""
    batch = valid.shape[0]
    hidden = torch.zeros(batch, size, dtype=torch.bool)
    if count == 0 or max_fraction == 0:
        return hidden
    valid = valid.cpu().clamp(min=1, max=size).to(torch.float64)
    width = (
        torch.rand(batch, count, generator=generator, dtype=torch.float64)
        * max_fraction
        * valid[:, None]
    ).floor()
    start = (
        torch.rand(batch, count, generator=generator, dtype=torch.float64)
        * (valid[:, None] - width + 1)
    ).floor()
    position = torch.arange(size, dtype=torch.float64)
    inside = (position >= start[..., None]) & (position < (start + width)[..., None])
    return hidden | inside.any(1)


def mask_features(
    features: Features, config: AudioTextConfig, spectral: bool, generator: torch.Generator
) -> Features:
    """``features`` with time spans (and, ``spectral``, frequency bands) set to 0 (module
    docstring); for a waveform input the time axis is its samples."""
    values = features.values
    n_time = int(values.shape[-1])
    frames = _spans(features.lengths, config.time_masks, config.time_mask_max, n_time, generator)
    hidden = frames[:, None, :] if values.ndim == 3 else frames[:, None, None, :]
    mask = hidden.to(values.device).expand_as(values)
    if spectral and values.ndim >= 3:
        n_bins = int(values.shape[-2])
        bins = _spans(
            torch.full((values.shape[0],), n_bins),
            config.freq_masks,
            config.freq_mask_max,
            n_bins,
            generator,
        )
        band = bins[:, :, None] if values.ndim == 3 else bins[:, None, :, None]
        mask = mask | band.to(values.device).expand_as(values)
    return Features(
        values.masked_fill(mask, 0.0), features.lengths, features.hop_s, features.first_centre_s
    )


def symmetric_cross_entropy(
    logits: torch.Tensor, not_negative: torch.Tensor | None = None
) -> torch.Tensor:
    """CLIP's loss on a ``(B, B)`` audio × text logit matrix whose pairs are its diagonal:
    ``½ [CE(S, arange) + CE(Sᵀ, arange)]``; ``not_negative`` ``(B, B)`` marks off-diagonal
    pairs left out of both softmaxes (``clap``, ``collap``, ``htcl``)."""
    if not_negative is not None:
        eye = torch.eye(len(logits), dtype=torch.bool, device=logits.device)
        logits = logits.masked_fill(not_negative & ~eye, float("-inf"))
    target = torch.arange(len(logits), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


class AudioTextObjective(Objective):
    """Base of the audio–text objectives: builds ``self.text_tower``; subclasses add heads and
    implement :meth:`forward` and :meth:`joint_heads`."""

    needs_text = True
    saves_beside_model = True
    config_class = AudioTextConfig

    def __init__(self, encoder: Encoder, config: AudioTextConfig) -> None:
        super().__init__(encoder, config)
        if config.pool == "cls" and encoder.spec.cls_tokens < 1:
            raise ConfigError("pool: cls needs an encoder with a CLS token; use pool: mean.")
        self.text_tower: TextEncoder = build_text_encoder(config.text, **config.text_config)

    def caption_tokenizer(self) -> CaptionTokenizer:
        return CaptionTokenizer(self.text_tower.tokenizer, self.text_tower.config.prefix)

    # ------------------------------------------------------------------ pieces for forward
    def audio_input(self, batch: TrainBatch, generator: torch.Generator) -> Features:
        """The batch's features after the input masking."""
        spectral = self.encoder.spec.input == "features"
        return mask_features(batch.features, self.config, spectral, generator)

    def pooled(self, out: EncoderOutput) -> torch.Tensor:
        """``(B, D)`` pooled last layer (``config.pool``)."""
        return pool_tokens(out, self.config.pool)

    def tokens(self, batch: TrainBatch) -> TokenBatch:
        """The batch's captions, one row per item (:meth:`check_pairs` first)."""
        text = batch.text
        if text is None:
            raise ConfigError(
                f"objective {self.name!r} needs captions (TrainBatch.text); train it with "
                "data.captions: true on corpus folders that have captions.csv."
            )
        rows = batch.clip_index.to(text.input_ids.device)
        if int(text.input_ids.shape[0]) != batch.n_clips or batch.n_clips != batch.n_items:
            raise ConfigError(
                f"objective {self.name!r} pairs one crop with one caption: expected one caption "
                f"and one view per clip; found {batch.n_items} items of {batch.n_clips} clips and "
                f"{int(text.input_ids.shape[0])} captions. Set data.views: 1."
            )
        return TokenBatch(text.input_ids[rows], text.padding_mask[rows])

    def text_vectors(self, tower: nn.Module, tokens: TokenBatch) -> torch.Tensor:
        """``(B, dim)`` tower outputs (without autograd when the tower is frozen)."""
        trainable = any(p.requires_grad for p in tower.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and trainable):
            return tower(tokens)

    # ------------------------------------------------------------------ export
    def joint_heads(self) -> tuple[nn.Sequential, nn.Sequential, dict[str, Any]]:
        """The audio head, the text head (``nn.Sequential`` of ``Head``) and the extra
        ``joint.json`` entries (``logit_scale``...) of the exported joint model."""
        raise NotImplementedError

    def save_beside_model(self, directory: Path) -> list[str]:
        audio_head, text_head, extra = self.joint_heads()
        record = {"objective": self.name, "pool": self.config.pool, "chunk_s": self.config.chunk_s}
        return save_joint(directory, self.text_tower, audio_head, text_head, {**record, **extra})


def pair_top1(logits: torch.Tensor) -> float:
    """Fraction of rows of a ``(B, B)`` similarity matrix whose best column is their own pair
    (the diagonal): audio-to-text top-1 within the batch."""
    target = torch.arange(logits.shape[0], device=logits.device)
    return float((logits.argmax(1) == target).float().mean())
