"""Patch grid, flatten order, padding tokens and positions (echoic.layers), checked by hand."""

from __future__ import annotations

import math

import pytest
import torch

from echoic.errors import ConfigError
from echoic.layers import patchify, sincos_grid, token_grid, token_padding_mask


@pytest.mark.parametrize(
    ("patch", "n_frames", "expected"),
    [
        ((16, 16), 100, (8, 7)),  # 100 / 16 = 6.25 → last partial patch kept
        ((16, 8), 100, (8, 13)),
        ((128, 4), 100, (1, 25)),
        ((16, 16), 5, (8, 1)),  # shorter than one patch
        ((16, 16), 3000, (8, 188)),
    ],
)
def test_token_grid_rounds_time_up(patch, n_frames, expected):
    assert token_grid(128, n_frames, patch) == expected


def test_token_grid_rejects_bins_not_divisible():
    with pytest.raises(ConfigError, match="multiple of 16"):
        token_grid(100, 50, (16, 16))


@pytest.mark.parametrize("patch", [(16, 16), (16, 8), (32, 4)])
def test_patchify_order_is_time_major_and_frequency_major_inside(patch):
    n_bins, n_frames = 32, 37
    f = torch.arange(n_bins, dtype=torch.float32)[:, None]
    t = torch.arange(n_frames, dtype=torch.float32)[None, :]
    values = (1000 * (f + 1) + t + 1)[None]  # unique, nonzero value per (bin, frame)
    patches = patchify(values, patch)
    pf, pt = patch
    n_freq, n_time = n_bins // pf, math.ceil(n_frames / pt)
    assert patches.shape == (1, n_freq * n_time, pf * pt)
    for token in range(n_freq * n_time):
        tp, fp = divmod(token, n_freq)
        for pixel in (0, 1, pt - 1, pt, pf * pt - 1):
            df, dt = divmod(pixel, pt)
            frame, bin_ = tp * pt + dt, fp * pf + df
            expected = 1000 * (bin_ + 1) + frame + 1 if frame < n_frames else 0.0
            assert patches[0, token, pixel].item() == expected, (token, pixel)


def test_token_padding_mask_uses_first_frame_of_each_patch():
    lengths = torch.tensor([64, 33, 32, 1])
    mask = token_padding_mask(lengths, n_bins=32, n_frames=64, patch=(16, 16))  # grid (2, 4)
    # time patches start at frames 0, 16, 32, 48; each repeated for 2 frequency patches
    expected_time = [
        [False, False, False, False],
        [False, False, False, True],  # 33 frames: patch at 32 holds frame 32
        [False, False, True, True],
        [False, True, True, True],
    ]
    expected = torch.tensor([[v for v in row for _ in range(2)] for row in expected_time])
    assert torch.equal(mask, expected)


def test_sincos_grid_matches_formula_and_separates_time_and_frequency():
    dim, n_freq, n_time = 16, 3, 5
    pos = sincos_grid(n_freq, n_time, dim)
    assert pos.shape == (n_freq * n_time, dim)
    quarter = dim // 4
    for token in range(n_freq * n_time):
        tp, fp = divmod(token, n_freq)
        for k in range(quarter):
            omega = 10000.0 ** (-k / quarter)
            assert pos[token, k].item() == pytest.approx(math.sin(tp * omega), abs=1e-6)
            assert pos[token, quarter + k].item() == pytest.approx(math.cos(tp * omega), abs=1e-6)
            assert pos[token, 2 * quarter + k].item() == pytest.approx(
                math.sin(fp * omega), abs=1e-6
            )
            assert pos[token, 3 * quarter + k].item() == pytest.approx(
                math.cos(fp * omega), abs=1e-6
            )


def test_sincos_grid_has_no_maximum_length():
    long = sincos_grid(8, 10_000, 32)
    short = sincos_grid(8, 10, 32)
    assert torch.equal(long[: short.shape[0]], short)
    assert torch.isfinite(long).all()


def test_positions_need_width_divisible_by_four():
    with pytest.raises(ConfigError, match="divisible by 4"):
        sincos_grid(2, 2, 18)
