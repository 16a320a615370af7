"""Streaming stitching and blockwise interpolation give exactly what the whole-array code gave."""

from __future__ import annotations

import itertools

import pytest
import torch

from echoic.embed.stitch import FrameStitcher
from echoic.embed.timestamps import _interpolate, regular_timestamps


def _reference(chunks: list[torch.Tensor], plan: list[tuple[int, int]]) -> torch.Tensor:
    """The stitching as one concatenation (the Embedder before frames were streamed)."""
    bounds = [plan[0][0]]
    for (_, end), (next_first, _) in itertools.pairwise(plan):
        bounds.append((next_first + end) // 2)
    bounds.append(plan[-1][1])
    parts = [
        chunks[k][bounds[k] - first : bounds[k + 1] - first] for k, (first, _) in enumerate(plan)
    ]
    return torch.cat(parts).float()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_stitched_frames_equal_one_concatenation_in_any_order(dtype: torch.dtype) -> None:
    plan = [(0, 16), (11, 27), (22, 38), (30, 46)]
    generator = torch.Generator().manual_seed(0)
    chunks = [torch.randn(end - first, 6, generator=generator).to(dtype) for first, end in plan]
    chunks[-1] = chunks[-1][:13]  # a last chunk with fewer valid frames than planned
    expected = _reference(chunks, plan)
    for order in ([0, 1, 2, 3], [3, 1, 0, 2], [2, 3, 1, 0]):
        stitcher = FrameStitcher(plan)
        for k in order:
            stitcher.add(k, chunks[k])
        found = stitcher.frames()
        assert found.dtype == torch.float32 and torch.equal(found, expected)


def test_stitcher_checks_its_chunks() -> None:
    stitcher = FrameStitcher([(0, 8), (6, 14)])
    stitcher.add(0, torch.zeros(8, 2))
    with pytest.raises(ValueError, match="not expected"):
        stitcher.add(0, torch.zeros(8, 2))
    with pytest.raises(ValueError, match="1 of 2 chunks placed"):
        stitcher.frames()


def test_blockwise_interpolation_is_bit_identical() -> None:
    frames = torch.randn(50, 7, generator=torch.Generator().manual_seed(1))
    pos = torch.arange(49 * 4 + 1, dtype=torch.float64) / 4
    lo = pos.floor().long().clamp(max=48)
    frac = (pos - lo).to(frames.dtype)[:, None]
    whole = frames[lo] * (1 - frac) + frames[lo + 1] * frac
    for block_bytes in (1, 7 * 4 * 3, 1 << 20):
        assert torch.equal(_interpolate(frames, pos, block_bytes), whole)


def test_timestamps_at_the_frame_hop_are_a_view_of_the_frames() -> None:
    frames = torch.randn(100, 3)
    times = 20.0 + 40.0 * torch.arange(100, dtype=torch.float64)
    ts, ts_ms = regular_timestamps(frames, times, duration_ms=3000.0, frame_hop_ms=40.0)
    kept = int((times <= 3000.0).sum())
    assert torch.equal(ts, frames[:kept]) and torch.equal(ts_ms, times[:kept])
    assert ts.data_ptr() == frames.data_ptr()  # no copy of an hour of frames
