"""Per-utterance mean and variance normalisation ("CMVN") of feature frames.

Several published models normalise each utterance's features bin by bin over its own frames
rather than with dataset statistics: s3prl's APC and NPC (``CMVN(mode="global")`` after a Kaldi
fbank), TERA / Mockingjay (their preprocessor's ``cmvn: True`` after a log-mel). Their formula is
``(x - mean) / (std + eps)`` with the *unbiased* standard deviation (``torch.std``) and ``eps``
(1e-10) outside the root. A frontend whose config sets ``cmvn: true`` applies it last
(:meth:`echoic.features.base.Frontend.forward`), over each item's valid frames only, so an item in a
padded batch gives what it gives alone. An item of one frame, whose unbiased std is undefined (NaN
in the references), gives zeros. Longer audio is normalised per Embedder chunk, as the references
normalise whatever they are given.

Constant bins. A bin that holds one value in every frame — the Kaldi fbank's floor ``log(float32
eps) = -15.94`` in the low bins of quiet audio — has ``x - mean = 0`` and std 0. The references
compute the mean in float32, whose rounding leaves ``x - mean`` at ~1e-6, which ``/ (0 + 1e-10)``
turns into values up to ~1e4 that depend on the summation order (the CPU's vector width). echoic
sums in float64 (exact for such a bin; float32 on devices without float64) and gives 0 there.
"""

from __future__ import annotations

import torch

__all__ = ["utterance_cmvn"]


def utterance_cmvn(values: torch.Tensor, lengths: torch.Tensor, eps: float) -> torch.Tensor:
    """``(B, ..., F, T)`` values normalised per item and bin over the item's first ``lengths``
    frames: ``(x - mean) / (std + eps)``, unbiased std; frames past an item's length become 0."""
    batch, n_frames = values.shape[0], values.shape[-1]
    wide = torch.float32 if values.device.type == "mps" else torch.float64
    x = values.to(wide)
    frames = torch.arange(n_frames, device=values.device)
    valid = frames[None, :] < lengths.to(values.device)[:, None]
    shape = (batch,) + (1,) * (values.ndim - 2)
    mask = valid.reshape(*shape, n_frames).to(wide)
    count = lengths.to(values.device, wide).reshape(*shape, 1)
    mean = (x * mask).sum(-1, keepdim=True) / count.clamp_min(1.0)
    centred = (x - mean) * mask
    variance = centred.square().sum(-1, keepdim=True) / (count - 1.0).clamp_min(1.0)
    return (centred / (variance.sqrt() + eps)).to(values.dtype)
