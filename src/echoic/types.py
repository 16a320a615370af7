"""The data that flows between pipeline stages, with shapes documented once.

Conventions: ``B`` batch, ``C`` channels, ``S`` samples, ``F`` frequency bins, ``T`` frames,
``N`` tokens, ``D`` model width. Lengths are ``*_lens``-style integer tensors; boolean masks are
True where something is hidden (padding or masked tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

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

    values: ``(B, F, T)`` float32, already normalised; exactly 0 beyond each item's length.
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
    def n_bins(self) -> int:
        return int(self.values.shape[1])

    @property
    def n_frames(self) -> int:
        return int(self.values.shape[2])

    def padding_mask(self) -> torch.Tensor:
        """``(B, T)`` bool, True on padded frames."""
        t = torch.arange(self.n_frames, device=self.values.device)
        return t[None, :] >= self.lengths[:, None]


@dataclass
class EncoderOutput:
    """Everything an encoder returns.

    layers: ``depth + 1`` tensors of ``(B, N, D)`` patch tokens: index 0 is the patch embedding plus
        positions, index i the output of block i; the last entry has the final LayerNorm applied.
    cls_layers: the same for the CLS token, ``(B, D)`` each, or None when the encoder has none.
    padding_mask: ``(B, N)`` bool, True on tokens that cover only padding.
    token_index: ``(B, N)`` int64 position of each returned token in the full patch grid
        (identity without kept-token indices). Grid order is time-major:
        ``token = time_patch * n_freq_patches + freq_patch``.
    time_index / freq_index: ``(B, N)`` int64 patch coordinates of each returned token.
    token_times_s: ``(B, N)`` float32 centre time in seconds of each token's time span.
    grid: ``(n_freq_patches, n_time_patches)`` of the full (unmasked) input.
    patch_hop_s: seconds between consecutive time patches.
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

    @property
    def last(self) -> torch.Tensor:
        """``(B, N, D)`` final (normalised) layer."""
        return self.layers[-1]


@dataclass
class ObjectiveOutput:
    """What an SSL objective returns: a scalar loss and float logs (already detached)."""

    loss: torch.Tensor
    logs: dict[str, float]
