"""Frames a tokenizer can read besides a model's layer, on an encoder's time-step grid.

Both take a frontend's output (``(B, F, T)`` values and ``(B,)`` valid frame counts) and an
encoder's time steps (``stride`` frames apart, each reading ``receptive`` frames; the numbers
every :class:`~echoic.encoders.base.EncoderSpec` declares), so their frames line up with the
encoder's tokens one for one (an objective calls them on its batch's features):

* :func:`stacked_frames`: the acoustic input of each time step, its ``receptive`` frames
  flattened (BEATs' tokenizer input, a codec's input for MERT-style RVQ targets);
* :func:`mfcc_frames`: HuBERT's iteration-0 frames, 13 MFCCs + deltas + delta-deltas (39
  values) of the log-mel frames, averaged over each time step's frames.
"""

from __future__ import annotations

import math

import torch

from echoic.errors import ConfigError

__all__ = ["mfcc", "mfcc_frames", "stacked_frames", "step_padding"]


def _steps(n_frames: int, stride: int, receptive: int) -> int:
    """Time steps of ``n_frames`` frames (a last partial step is kept, zero-filled)."""
    if stride < 1 or receptive < stride:
        raise ConfigError(f"need stride >= 1 and receptive >= stride; found {stride}, {receptive}.")
    return max(1, math.ceil(n_frames / stride))


def _windows(
    values: torch.Tensor, stride: int, receptive: int, mode: str = "constant"
) -> torch.Tensor:
    """``(B, C, T)`` → ``(B, n_steps, receptive, C)``; beyond the last frame: zeros
    (``mode="constant"``) or the last frame repeated (``"replicate"``)."""
    n_steps = _steps(values.shape[-1], stride, receptive)
    need = (n_steps - 1) * stride + receptive
    padded = torch.nn.functional.pad(values, (0, max(0, need - values.shape[-1])), mode=mode)
    return padded.unfold(-1, receptive, stride)[:, :, :n_steps].permute(0, 2, 3, 1)


def step_padding(lengths: torch.Tensor, n_steps: int, stride: int) -> torch.Tensor:
    """``(B, n_steps)`` bool, True on time steps whose first frame is past ``lengths``."""
    first = torch.arange(n_steps, device=lengths.device) * stride
    return first[None, :] >= lengths[:, None]


def stacked_frames(values: torch.Tensor, stride: int, receptive: int) -> torch.Tensor:
    """Features ``(B, F, T)`` → ``(B, n_steps, receptive * F)``: each time step's frames
    flattened time-major (frame 0's ``F`` bins, then frame 1's, ...)."""
    if values.ndim != 3:
        raise ConfigError(
            f"stacked_frames expects (B, F, T) features; found {tuple(values.shape)}."
        )
    windows = _windows(values, stride, receptive)
    return windows.reshape(*windows.shape[:2], -1)


def mfcc(logmel: torch.Tensor, n_mfcc: int = 13, delta_width: int = 2) -> torch.Tensor:
    """``(B, F, T)`` log-mel → ``(B, 3 * n_mfcc, T)``: MFCCs (orthonormal DCT-II of the log-mel
    bins, c0 included), their HTK deltas (regression over ``±delta_width`` frames, edges
    repeated) and the deltas of those."""
    n_bins = logmel.shape[-2]
    if not 0 < n_mfcc <= n_bins:
        raise ConfigError(f"need 0 < n_mfcc <= {n_bins} log-mel bins; found {n_mfcc}.")
    k = torch.arange(n_mfcc, dtype=torch.float64)[:, None]
    m = torch.arange(n_bins, dtype=torch.float64)[None, :]
    basis = torch.cos(math.pi * k * (m + 0.5) / n_bins) * math.sqrt(2.0 / n_bins)
    basis[0] /= math.sqrt(2.0)
    coefficients = torch.matmul(basis.to(logmel), logmel)
    first = _deltas(coefficients, delta_width)
    return torch.cat([coefficients, first, _deltas(first, delta_width)], dim=-2)


def _deltas(x: torch.Tensor, width: int) -> torch.Tensor:
    t = x.shape[-1]
    padded = torch.cat(
        [x[..., :1].expand(*x.shape[:-1], width), x, x[..., -1:].expand(*x.shape[:-1], width)],
        dim=-1,
    )
    out = torch.zeros_like(x)
    for n in range(1, width + 1):
        out = out + n * (
            padded[..., width + n : width + n + t] - padded[..., width - n : width - n + t]
        )
    return out / (2 * sum(n * n for n in range(1, width + 1)))


def mfcc_frames(
    logmel: torch.Tensor, stride: int, receptive: int, n_mfcc: int = 13
) -> torch.Tensor:
    """Log-mel ``(B, F, T)`` → ``(B, n_steps, 3 * n_mfcc)``: :func:`mfcc` averaged over each time
    step's ``receptive`` frames (past the end, the last frame is repeated)."""
    return _windows(mfcc(logmel, n_mfcc), stride, receptive, mode="replicate").mean(2)
