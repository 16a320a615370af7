"""Learned absolute positions: identity at the table's size, F.interpolate elsewhere."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from echoic.errors import ConfigError
from echoic.layers import LearnedPositions1d, LearnedPositions2d

D = 6


def test_1d_exact_size_is_the_table():
    positions = LearnedPositions1d(10, D)
    out = positions(10)
    assert out is positions.table


@pytest.mark.parametrize("n_tokens", [1, 4, 13, 31])
def test_1d_resampling_matches_interpolate(n_tokens: int):
    torch.manual_seed(0)
    positions = LearnedPositions1d(10, D)
    table = positions.table.detach()
    expected = F.interpolate(
        table.T.unsqueeze(0), size=n_tokens, mode="linear", align_corners=False
    )
    got = positions(n_tokens)
    assert got.shape == (n_tokens, D)
    assert torch.allclose(got, expected[0].T, atol=0, rtol=0)
    if n_tokens == 31:  # growing keeps the ends and varies smoothly
        assert torch.equal(got[0], table[0]) and torch.equal(got[-1], table[-1])


def test_1d_resampling_is_differentiable():
    positions = LearnedPositions1d(10, D)
    positions(7).sum().backward()
    assert positions.table.grad is not None and positions.table.grad.abs().sum() > 0


def test_2d_exact_size_is_the_table():
    positions = LearnedPositions2d(4, 5, D)
    assert positions.grid(4, 5) is positions.table


@pytest.mark.parametrize(("n_freq", "n_time"), [(4, 9), (2, 5), (8, 3), (4, 5)])
def test_2d_resampling_matches_interpolate_and_is_time_major(n_freq: int, n_time: int):
    torch.manual_seed(1)
    positions = LearnedPositions2d(4, 5, D)
    table = positions.table.detach()
    if (n_freq, n_time) == (4, 5):
        expected = table
    else:
        image = table.permute(2, 0, 1).unsqueeze(0)  # (1, D, F, T)
        resized = F.interpolate(image, size=(n_freq, n_time), mode="bilinear", align_corners=False)
        expected = resized[0].permute(1, 2, 0)
    grid = positions.grid(n_freq, n_time)
    assert grid.shape == (n_freq, n_time, D)
    assert torch.equal(grid, expected)
    flat = positions(n_freq, n_time)
    assert flat.shape == (n_time * n_freq, D)
    for time_patch, freq_patch in [(0, 0), (n_time - 1, 0), (1, n_freq - 1), (n_time - 1, 1)]:
        assert torch.equal(flat[time_patch * n_freq + freq_patch], grid[freq_patch, time_patch])


def test_rejects_empty_sizes():
    with pytest.raises(ConfigError):
        LearnedPositions1d(10, D)(0)
    with pytest.raises(ConfigError):
        LearnedPositions2d(4, 5, D).grid(0, 3)
