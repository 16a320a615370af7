"""echoic.embed.timestamps: the regular grid every zoo model's timestamps come from."""

from __future__ import annotations

import pytest
import torch

from echoic.embed.timestamps import regular_timestamps, timestamp_hop_ms


@pytest.mark.parametrize(
    ("frame_hop", "grid_hop"),
    [(10.0, 10.0), (50.0, 50.0), (80.0, 40.0), (160.0, 40.0), (1160.998, 48.375)],
)
def test_grid_hop_is_the_largest_integer_division_within_50_ms(frame_hop, grid_hop):
    assert timestamp_hop_ms(frame_hop) == pytest.approx(grid_hop, abs=1e-3)


def test_linear_interpolation_and_duration_cut():
    frames = torch.tensor([[0.0, 10.0], [4.0, 30.0], [8.0, 50.0]])
    times = torch.tensor([20.0, 100.0, 180.0], dtype=torch.float64)
    emb, ts = regular_timestamps(frames, times, duration_ms=150.0, frame_hop_ms=80.0)
    torch.testing.assert_close(ts, torch.tensor([20.0, 60.0, 100.0, 140.0], dtype=torch.float64))
    torch.testing.assert_close(
        emb, torch.tensor([[0.0, 10.0], [2.0, 20.0], [4.0, 30.0], [6.0, 40.0]])
    )


def test_clip_shorter_than_first_centre_keeps_one_frame_at_its_middle():
    frames = torch.ones(2, 3)
    emb, ts = regular_timestamps(frames, torch.tensor([400.0, 480.0]), 100.0, 80.0)
    assert emb.shape == (1, 3) and ts.tolist() == [50.0]
    with pytest.raises(ValueError, match="expected frames"):
        regular_timestamps(torch.ones(0, 3), torch.zeros(0), 100.0, 80.0)
