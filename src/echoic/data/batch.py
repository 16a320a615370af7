"""Lists of variable-length waveforms ↔ padded :class:`echoic.types.AudioBatch`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from echoic.types import AudioBatch


def pad_batch(waveforms: Sequence[np.ndarray | torch.Tensor], sample_rate: int) -> AudioBatch:
    """Zero-pad waveforms to the longest one.

    Args:
        waveforms: all ``(S_i,)`` (mono) or all ``(C, S_i)`` with the same ``C``; numpy or torch,
            any float dtype (converted to float32; torch tensors keep their device).
        sample_rate: the rate all waveforms share.

    Returns:
        AudioBatch with ``waveform`` ``(B, S)`` or ``(B, C, S)``, ``S = max S_i``, zero beyond each
        length, and ``lengths`` ``(B,)`` int64.
    """
    if len(waveforms) == 0:
        raise ValueError("pad_batch needs at least one waveform; found an empty sequence")
    items = [torch.as_tensor(w) for w in waveforms]
    ndims = {w.ndim for w in items}
    if len(ndims) != 1 or ndims.pop() not in (1, 2):
        shapes = [tuple(w.shape) for w in items]
        raise ValueError(
            f"pad_batch expects all waveforms (S,) or all (C, S); found shapes {shapes}. "
            "Mix down or add a channel axis so they agree."
        )
    channels = {tuple(w.shape[:-1]) for w in items}
    if len(channels) != 1:
        found = sorted(c[0] for c in channels)
        raise ValueError(
            f"pad_batch expects the same channel count for every (C, S) waveform; found C in {found}. "
            "Load with mono=True or select equal channels."
        )
    lengths = torch.tensor([w.shape[-1] for w in items], dtype=torch.int64)
    longest = int(lengths.max())
    device = items[0].device
    out = torch.zeros((len(items), *channels.pop(), longest), dtype=torch.float32, device=device)
    for i, w in enumerate(items):
        out[i, ..., : w.shape[-1]] = w.to(device=device, dtype=torch.float32)
    return AudioBatch(waveform=out, lengths=lengths.to(device), sample_rate=int(sample_rate))


def unpad(batch: AudioBatch) -> list[torch.Tensor]:
    """Split a batch back into ``(S_i,)`` or ``(C, S_i)`` tensors (views into ``batch.waveform``)."""
    return [batch.waveform[i, ..., : int(n)] for i, n in enumerate(batch.lengths.tolist())]
