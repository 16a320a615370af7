"""The data that flows between pipeline stages, with shapes documented once.

Conventions: ``B`` batch, ``C`` channels, ``S`` samples, ``F`` frequency bins, ``T`` frames,
``N`` tokens, ``D`` model width. Lengths are ``*_lens``-style integer tensors; boolean masks are
True where something is hidden (padding or masked tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch


@dataclass
class AudioBatch:
    """Padded audio.

    waveform: ``(B, S)`` mono or ``(B, C, S)`` multi-channel float32 in [-1, 1], zero beyond each length.
    lengths: ``(B,)`` int64 number of valid samples per item.
    sample_rate: samples per second shared by the batch.
    """

    waveform: torch.Tensor
    lengths: torch.Tensor
    sample_rate: int

    def __post_init__(self) -> None:
        if self.waveform.ndim not in (2, 3):
            raise ValueError(
                f"AudioBatch.waveform must be (B, S) or (B, C, S); found shape {tuple(self.waveform.shape)}"
            )
        if self.lengths.shape != (self.waveform.shape[0],):
            raise ValueError(
                f"AudioBatch.lengths must be (B,)={self.waveform.shape[0]}; found {tuple(self.lengths.shape)}"
            )

    @property
    def batch_size(self) -> int:
        return int(self.waveform.shape[0])

    def durations_s(self) -> torch.Tensor:
        """``(B,)`` float64 seconds of valid audio."""
        return self.lengths.double() / self.sample_rate


@dataclass
class Features:
    """Frame-level features of a batch.

    values: ``(B, F, T)`` float32 for mono audio, ``(B, C, F, T)`` for ``C > 1`` channels (the
        frontend's ``out_channels``: audio channels, then any inter-channel features); already
        normalised; exactly 0 beyond each item's length.
    lengths: ``(B,)`` int64 valid frames per item.
    hop_s: seconds between consecutive frames.
    first_centre_s: time in seconds of the centre of frame 0 (frame t is centred at
        ``first_centre_s + t * hop_s``).
    """

    values: torch.Tensor
    lengths: torch.Tensor
    hop_s: float
    first_centre_s: float

    @property
    def n_channels(self) -> int:
        """Feature channels: 1 for ``(B, F, T)`` values, ``C`` for ``(B, C, F, T)``."""
        return 1 if self.values.ndim == 3 else int(self.values.shape[1])

    @property
    def n_bins(self) -> int:
        return int(self.values.shape[-2])

    @property
    def n_frames(self) -> int:
        return int(self.values.shape[-1])

    def padding_mask(self) -> torch.Tensor:
        """``(B, T)`` bool, True on padded frames."""
        t = torch.arange(self.n_frames, device=self.values.device)
        return t[None, :] >= self.lengths[:, None]


@dataclass
class EncoderOutput:
    """Everything an encoder returns (the contract of ``echoic.encoders.base``).

    Tokens sit on a grid ``(n_freq, n_time)``: 2-D patch models have ``n_freq`` tokens per time
    step, 1-D sequence models (frames of a waveform CNN, full-band patches) have ``n_freq == 1``.

    layers: ``depth + 1`` tensors of ``(B, N, D)`` tokens: index 0 is the token embedding (plus
        positions where the encoder adds them there), index i the output of block i; the last
        entry is the encoder's final output (after its final norm, where it has one).
    cls_layers: the same for the first summary token (CLS), ``(B, D)`` each, or None.
    padding_mask: ``(B, N)`` bool, True on tokens that cover only padding.
    token_index: ``(B, N)`` int64 position of each returned token in the flattened full grid
        (identity without kept-token indices); the flatten order is the encoder's
        (``EncoderSpec.flatten``) — consumers use ``time_index`` / ``freq_index`` instead.
    time_index / freq_index: ``(B, N)`` int64 grid coordinates of each returned token.
    token_times_s: ``(B, N)`` float32 centre time in seconds of each token's receptive field: the
        single source of timing (the Embedder's ``TokenGeometry`` gives the same centres).
    grid: ``(n_freq, n_time)`` of the full (unmasked) input.
    patch_hop_s: seconds between consecutive time steps of the grid.
    dist_layers: the same as ``cls_layers`` for a second summary token, DeiT's distillation token
        (AST, SSAST), or None. AST's pooled output is ``(cls_layers[-1] + dist_layers[-1]) / 2``.
    """

    layers: list[torch.Tensor]
    cls_layers: list[torch.Tensor] | None
    padding_mask: torch.Tensor
    token_index: torch.Tensor
    time_index: torch.Tensor
    freq_index: torch.Tensor
    token_times_s: torch.Tensor
    grid: tuple[int, int]
    patch_hop_s: float
    dist_layers: list[torch.Tensor] | None = None

    @property
    def last(self) -> torch.Tensor:
        """``(B, N, D)`` final (normalised) layer."""
        return self.layers[-1]


class TextTokens(Protocol):
    """Tokenized captions (``echoic.text.TokenBatch`` is one): ``input_ids`` ``(B, L)`` int64 and
    ``padding_mask`` ``(B, L)`` bool, True on padding."""

    input_ids: torch.Tensor
    padding_mask: torch.Tensor


@dataclass
class TrainBatch:
    """What an SSL objective receives for one training step.

    features: the frontend's output for every item ``(B, ...)``.
    clip_index: ``(B,)`` int64, which source clip each item is a view of: items with the same
        value are different views (random crops) of one clip. Items of one clip are adjacent.
    view_index: ``(B,)`` int64, which view of its clip each item is (0 … views - 1).
    audio: the items' waveform ``(B, S)`` / ``(B, C, S)`` when the objective asks for it
        (``Objective.needs_waveform``), else None.
    text: one caption per clip, tokenized (row ``c`` is clip ``c``: ``clip_index`` maps items to
        rows), for audio–text objectives (``Objective.needs_text``); None for the others.
    groups: with ``text``, ``(n_clips, 2)`` int64 co-occurrence ids of each clip row: column 0
        its ``group``, column 1 its ``source`` in the captions table (``htcl``); else None.
    """

    features: Features
    clip_index: torch.Tensor
    view_index: torch.Tensor
    audio: AudioBatch | None = None
    text: TextTokens | None = None
    groups: torch.Tensor | None = None

    def __post_init__(self) -> None:
        batch = int(self.features.values.shape[0])
        for name in ("clip_index", "view_index"):
            value = getattr(self, name)
            if value.shape != (batch,):
                raise ValueError(
                    f"TrainBatch.{name} must be (B,)=({batch},); found {tuple(value.shape)}."
                )

    @classmethod
    def of(
        cls,
        features: Features,
        views: int = 1,
        audio: AudioBatch | None = None,
        text: TextTokens | None = None,
    ) -> TrainBatch:
        """A batch whose items are ``views`` adjacent views per clip (clip-major order)."""
        batch = int(features.values.shape[0])
        if views < 1 or batch % views:
            raise ValueError(
                f"{batch} items cannot be split into clips of {views} views each; expected a "
                f"multiple of {views}."
            )
        device = features.values.device
        clip = torch.arange(batch // views, device=device).repeat_interleave(views)
        view = torch.arange(views, device=device).repeat(batch // views)
        return cls(features, clip, view, audio, text)

    @property
    def n_items(self) -> int:
        return int(self.clip_index.shape[0])

    @property
    def n_clips(self) -> int:
        """Distinct source clips in the batch."""
        return int(torch.unique(self.clip_index).numel()) if self.n_items else 0


@dataclass
class ObjectiveOutput:
    """What an SSL objective returns: a scalar loss and float logs (already detached)."""

    loss: torch.Tensor
    logs: dict[str, float]
