"""What the 1-D frame encoders of converted checkpoints share (TERA / Mockingjay, APC, NPC, BYOL-A).

These encoders read mono spectral frames ``(B, F, T)`` and give one token every ``stride`` frames
on a ``(1, n_time)`` grid, with no summary token and no kept-token indices: their spec, their input
check, their reconstruction targets and the :class:`~echoic.types.EncoderOutput` assembly
(token times from the spec, the only timing source) are the same, and live here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from echoic.encoders.base import EncoderSpec, merge_padding, time_token_padding
from echoic.errors import ConfigError
from echoic.types import EncoderOutput, Features

__all__ = ["frame_output", "frame_padding", "frame_spec", "frame_targets", "frame_values"]


def frame_spec(n_bins: int, width: int, depth: int, stride: int = 1) -> EncoderSpec:
    """1-D tokens every ``stride`` frames, each declared as reading those ``stride`` frames;
    ``stride > 1`` (pooling CNNs) drops a partial last step, as the pooling does."""
    return EncoderSpec(
        input="features",
        channels=1,
        n_bins=n_bins,
        width=width,
        depth=depth,
        layout="frames",
        flatten="time_major",
        freq_tokens=1,
        stride=stride,
        receptive=stride,
        partial_last=stride == 1,
        accepts_keep_idx=False,
        cls_tokens=0,
        token_input_size=n_bins * stride,
    )


def frame_values(features: Features, n_bins: int, family: str, frontend: str) -> torch.Tensor:
    """``(B, n_bins, T)`` values after checking their shape, zero past each item's length."""
    values = features.values
    if values.ndim != 3 or values.shape[1] != n_bins:
        raise ConfigError(
            f"the {family} encoder reads mono features (B, {n_bins}, T); found shape "
            f"{tuple(values.shape)}. Pair it with the frontend it was converted with ({frontend}, "
            f"{n_bins} bins)."
        )
    frames = torch.arange(values.shape[-1], device=values.device)
    valid = frames[None, :] < features.lengths.to(values.device)[:, None]
    return values.masked_fill(~valid[:, None, :], 0.0)


def frame_padding(
    spec: EncoderSpec,
    features: Features,
    keep_idx: torch.Tensor | None,
    padding_mask: torch.Tensor | None,
    family: str,
) -> torch.Tensor:
    """``(B, n_time)`` padding of ``features`` (with the caller's ``padding_mask``); these
    encoders take no kept-token indices."""
    if keep_idx is not None:
        raise ConfigError(
            f"the {family} encoder takes no kept-token indices (spec.accepts_keep_idx=False)."
        )
    lengths = features.lengths.to(features.values.device)
    own = time_token_padding(spec, lengths, spec.time_steps(features.n_frames))
    return merge_padding(own, padding_mask)


def frame_targets(spec: EncoderSpec, values: torch.Tensor) -> torch.Tensor:
    """``(B, N, F * stride)`` the frames of each token, bin-major (``values`` ``(B, F, T)``)."""
    b, f, t = values.shape
    n_time = spec.time_steps(t)
    values = F.pad(values, (0, max(0, n_time * spec.stride - t)))[..., : n_time * spec.stride]
    return values.reshape(b, f, n_time, spec.stride).permute(0, 2, 1, 3).reshape(b, n_time, -1)


def frame_output(
    spec: EncoderSpec,
    layers: list[torch.Tensor],
    padding_mask: torch.Tensor,
    features: Features,
) -> EncoderOutput:
    """The :class:`EncoderOutput` of ``layers`` (each ``(B, n_time, D)``) on a ``(1, n_time)`` grid."""
    batch, n_time = padding_mask.shape
    index = torch.arange(n_time, device=padding_mask.device).expand(batch, n_time)
    times = features.first_centre_s + features.hop_s * spec.centre_frame(index.double())
    return EncoderOutput(
        layers=layers,
        cls_layers=None,
        padding_mask=padding_mask,
        token_index=index,
        time_index=index,
        freq_index=torch.zeros_like(index),
        token_times_s=times.float(),
        grid=(1, n_time),
        patch_hop_s=features.hop_s * spec.stride,
    )
