"""What the frontends that frame each item on its own samples share (``passt_mel``,
``centred_mel``).

Both reproduce references that run one clip at a time: each item is reflected ``n_fft / 2``
samples at both of **its own** ends (an item too short to reflect is zero-extended to
``n_fft / 2 + 1`` samples first), so a clip gives the same frames in any batch. Their mono input
check, frame count and ``compute`` (every sample valid) are the same too, and live here.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F

from echoic.features.base import Frontend
from echoic.types import AudioBatch

__all__ = ["ItemFrontend", "reflect_items"]


def reflect_items(
    waveform: torch.Tensor, items: Iterable[torch.Tensor], longest: int, half: int
) -> torch.Tensor:
    """``(B, max(longest, half + 1) + 2 · half)``: row ``i`` is the ``i``-th 1-D item (at most
    ``longest`` samples) reflected ``half`` samples at both its ends — zero-extended to
    ``half + 1`` samples first when shorter — then zeros (``waveform`` gives the batch size, dtype
    and device)."""
    out = waveform.new_zeros(waveform.shape[0], max(longest, half + 1) + 2 * half)
    for i, item in enumerate(items):
        if item.shape[0] <= half:
            item = F.pad(item, (0, half + 1 - item.shape[0]))
        padded = F.pad(item[None, None], (half, half), mode="reflect")[0, 0]
        out[i, : padded.shape[0]] = padded
    return out


class ItemFrontend(Frontend):
    """A mono frontend computing each item from its own samples: subclasses implement
    :meth:`_log_mel` (``(B, S)`` and each item's samples → ``(B, n_mels, n_frames)``) and their
    ``forward`` on :meth:`_mono_frames`. The config has ``n_mels`` and ``hop_length``."""

    @property
    def n_bins(self) -> int:
        return int(self.config.n_mels)

    @property
    def hop_length(self) -> int:
        return int(self.config.hop_length)

    def compute(self, waveform: torch.Tensor, n_frames: int) -> torch.Tensor:
        """``(B, S)`` (every sample valid) → ``(B, n_mels, n_frames)`` (not yet normalised)."""
        lengths = torch.full((waveform.shape[0],), waveform.shape[1], device=waveform.device)
        return self._log_mel(waveform, lengths, n_frames)

    def _log_mel(
        self, waveform: torch.Tensor, lengths: torch.Tensor, n_frames: int
    ) -> torch.Tensor:
        raise NotImplementedError

    def _mono_frames(
        self, batch: AudioBatch
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """``(waveform (B, S), samples (B,), frames (B,), n_frames)`` of a mono batch: each item's
        valid samples and frames, and the longest item's frame count."""
        waveform = self.check_batch(batch)
        if waveform.ndim != 2:
            raise ValueError(f"{type(self).__name__} takes mono (B, S) audio.")
        samples = batch.lengths.to(waveform.device)
        lengths = self.num_frames(samples)
        n_frames = int(lengths.max()) if lengths.numel() else 0
        return waveform, samples, lengths, n_frames
