"""Native frame embeddings → timestamp embeddings on a regular grid (shared by every model).

A model gives frame embeddings ``(T, D)`` at regularly spaced centre times ``(T,)`` in ms. HEAR
asks for timestamps on a regular hop no longer than ``max_hop_ms`` (50 ms): the frame hop is
divided by the smallest integer that brings it to ≤ ``max_hop_ms`` and the frames are linearly
interpolated onto that grid. Timestamps beyond the clip's duration are dropped; a clip shorter
than the model's first frame centre keeps one frame, stamped at the clip's middle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def timestamp_hop_ms(frame_hop_ms: float, max_hop_ms: float = 50.0) -> float:
    """The grid hop: ``frame_hop_ms / k`` for the smallest integer ``k`` that gives ≤ ``max_hop_ms``."""
    if frame_hop_ms <= 0 or max_hop_ms <= 0:
        raise ValueError(
            f"frame_hop_ms and max_hop_ms must be > 0; found {frame_hop_ms}, {max_hop_ms}"
        )
    factor = math.ceil(frame_hop_ms / max_hop_ms - 1e-9)
    return frame_hop_ms / max(1, factor)


def regular_timestamps(
    frames: torch.Tensor,
    frame_ms: torch.Tensor,
    duration_ms: float,
    frame_hop_ms: float,
    max_hop_ms: float = 50.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Interpolate ``frames`` ``(T, D)`` at ``frame_ms`` ``(T,)`` onto a regular grid.

    ``frame_ms`` must be ``frame_ms[0] + t * frame_hop_ms``. Returns ``(T', D)`` embeddings (the
    dtype of ``frames``) and ``(T',)`` float64 times in ms, every time ≤ ``duration_ms``.
    """
    lazy, times = interpolated_timestamps(frames, frame_ms, duration_ms, frame_hop_ms, max_hop_ms)
    return lazy.dense(), times


@dataclass
class InterpolatedFrames:
    """Timestamp embeddings ``(n, D)`` kept as the frames they interpolate: rows are computed on
    demand (:meth:`rows`), so a long file's timestamps need not be held whole (``echoic embed
    --timestamps`` writes them page by page). ``pos``: each row's fractional frame index, or None
    when row ``i`` is frame ``i``."""

    frames: torch.Tensor
    pos: torch.Tensor | None
    n: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.n, int(self.frames.shape[1])

    @property
    def nbytes(self) -> int:
        """Bytes held (the frames), not the bytes of the rows they stand for."""
        return int(self.frames.numel() * self.frames.element_size())

    def rows(self, first: int, end: int) -> torch.Tensor:
        """Rows ``[first, end)``: the same values as the same rows of :meth:`dense`."""
        if self.pos is None:
            return self.frames[first:end]
        return _interpolate(self.frames, self.pos[first:end])

    def dense(self) -> torch.Tensor:
        return self.rows(0, self.n).contiguous()


def interpolated_timestamps(
    frames: torch.Tensor,
    frame_ms: torch.Tensor,
    duration_ms: float,
    frame_hop_ms: float,
    max_hop_ms: float = 50.0,
) -> tuple[InterpolatedFrames, torch.Tensor]:
    """:func:`regular_timestamps` without computing the rows: ``(InterpolatedFrames, times)``."""
    if frames.ndim != 2 or frame_ms.shape != frames.shape[:1] or frames.shape[0] == 0:
        raise ValueError(
            f"expected frames (T, D) with T >= 1 and frame_ms (T,); found {tuple(frames.shape)} "
            f"and {tuple(frame_ms.shape)}"
        )
    frame_ms = frame_ms.to(torch.float64)
    factor = max(1, round(frame_hop_ms / timestamp_hop_ms(frame_hop_ms, max_hop_ms)))
    n = frames.shape[0]
    pos: torch.Tensor | None = None
    if factor > 1 and n > 1:
        pos = torch.arange((n - 1) * factor + 1, dtype=torch.float64) / factor
        times = frame_ms[0] + pos * frame_hop_ms
    else:
        times = frame_ms
    keep = times <= duration_ms + 1e-6
    kept = int(keep.sum())
    if kept == 0:
        first = InterpolatedFrames(frames[:1], None, 1)
        return first, torch.tensor([duration_ms / 2], dtype=torch.float64)
    if bool(keep[:kept].all()):  # times increase: the kept ones are a prefix
        return InterpolatedFrames(frames, None if pos is None else pos[:kept], kept), times[:kept]
    if pos is None:
        pos = torch.arange(n, dtype=torch.float64)
    return InterpolatedFrames(frames, pos[keep], kept), times[keep]


def _interpolate(
    frames: torch.Tensor, pos: torch.Tensor, block_bytes: int = 2 << 20
) -> torch.Tensor:
    """``frames`` ``(T, D)`` linearly interpolated at fractional indices ``pos`` ``(T',)``, in
    blocks of rows so that temporaries stay at ``block_bytes`` (the values are those of one
    whole-array expression: every element is computed alike)."""
    n, dim = frames.shape
    out = frames.new_empty((pos.shape[0], dim))
    rows = max(1, block_bytes // max(1, dim * frames.element_size()))
    for first in range(0, pos.shape[0], rows):
        at = pos[first : first + rows]
        lo = at.floor().long().clamp(max=n - 2)
        frac = (at - lo).to(frames.dtype)[:, None]
        out[first : first + rows] = frames[lo] * (1 - frac) + frames[lo + 1] * frac
    return out
