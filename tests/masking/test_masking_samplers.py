"""Property tests of the mask samplers: exact counts, index ranges, structure, determinism."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from echoic.errors import ConfigError
from echoic.masking import MASKERS, MaskSample, build_masker, masked_count
from echoic.masking.inverse_block import block_cover
from echoic.registry import RegistryError

NAMES = MASKERS.names()


def _grids(min_axis: int = 1) -> st.SearchStrategy[tuple[int, int]]:
    return st.tuples(st.integers(min_axis, 8), st.integers(max(2, min_axis), 24))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_registry_lists_every_sampler() -> None:
    assert set(NAMES) == {
        "random",
        "group_random",
        "inverse_block",
        "cluster",
        "time_span",
        "freq_span",
    }


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=25, deadline=None)
@given(
    grid=_grids(min_axis=2),
    batch=st.integers(1, 5),
    ratio=st.floats(0.05, 0.95),
    seed=st.integers(0, 2**31 - 1),
)
def test_exact_counts_ranges_and_consistency(
    name: str, grid: tuple[int, int], batch: int, ratio: float, seed: int
) -> None:
    masker = build_masker(name, mask_ratio=ratio)
    sample = masker(batch, grid, _gen(seed))
    n_tokens = grid[0] * grid[1]
    assert sample.masked.shape == (batch, n_tokens) and sample.masked.dtype == torch.bool
    counts = sample.masked.sum(dim=1)
    assert counts.tolist() == [masker.count(grid)] * batch
    assert 1 <= masker.count(grid) <= n_tokens - 1
    assert sample.keep_idx.shape == (batch, n_tokens - masker.count(grid))
    assert sample.masked_idx.shape == (batch, masker.count(grid))
    for b in range(batch):
        keep, hid = sample.keep_idx[b].tolist(), sample.masked_idx[b].tolist()
        assert keep == sorted(keep) and hid == sorted(hid)
        assert sorted(keep + hid) == list(range(n_tokens))
        assert all(not sample.masked[b, i] for i in keep)
        assert all(sample.masked[b, i] for i in hid)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=10, deadline=None)
@given(grid=_grids(min_axis=2), seed=st.integers(0, 2**31 - 1))
def test_same_seed_same_masks_and_the_seed_matters(
    name: str, grid: tuple[int, int], seed: int
) -> None:
    masker = build_masker(name)
    a = masker(6, grid, _gen(seed))
    b = masker(6, grid, _gen(seed))
    assert torch.equal(a.masked, b.masked)
    assert torch.equal(a.keep_idx, b.keep_idx) and torch.equal(a.masked_idx, b.masked_idx)


@pytest.mark.parametrize("name", NAMES)
def test_different_seeds_and_items_differ(name: str) -> None:
    masker = build_masker(name, mask_ratio=0.5)
    a = masker(8, (8, 20), _gen(0))
    b = masker(8, (8, 20), _gen(1))
    assert not torch.equal(a.masked, b.masked)
    assert len({tuple(row.tolist()) for row in a.masked}) > 1  # items are masked independently


def test_masked_count_rounds_and_clamps() -> None:
    assert masked_count(512, 0.8) == 410  # data2vec 2.0 / EAT: keep int(512 * 0.2) = 102
    assert masked_count(512, 400 / 512) == 400  # SSAST hides 400 of 512 patches
    assert masked_count(10, 0.01) == 1 and masked_count(10, 0.99) == 9
    with pytest.raises(ConfigError, match="at least 2 tokens"):
        masked_count(1, 0.5)


def test_block_cover_is_the_clipped_rectangle() -> None:
    for block in [(5, 5), (4, 3), (1, 1)]:
        for f, t in [(0, 0), (3, 7), (7, 19), (4, 10)]:
            centres = torch.zeros(1, 8, 20, dtype=torch.bool)
            centres[0, f, t] = True
            expected = torch.zeros(8, 20, dtype=torch.bool)
            f0, t0 = f - block[0] // 2, t - block[1] // 2
            expected[max(f0, 0) : max(f0 + block[0], 0), max(t0, 0) : max(t0 + block[1], 0)] = True
            assert torch.equal(block_cover(centres, block)[0], expected), (block, f, t)


def _neighbour_agreement(sample: MaskSample, grid: tuple[int, int], visible: bool) -> float:
    """Mean fraction of 4-neighbours of a visible (hidden) token that are visible (hidden) too."""
    n_freq, n_time = grid
    m = sample.masked.reshape(-1, n_time, n_freq)
    target = ~m if visible else m
    same, total = 0.0, 0.0
    for dt, df in [(0, 1), (1, 0)]:
        a = target[:, : n_time - dt, : n_freq - df]
        b = target[:, dt:, df:]
        same += float((a & b).sum()) * 2
        total += float(a.sum() + b.sum())
    return same / total


def test_inverse_block_keeps_clumps_where_random_keeps_scattered_tokens() -> None:
    grid = (8, 64)
    inverse = build_masker("inverse_block")(16, grid, _gen(0))
    scattered = build_masker("random")(16, grid, _gen(0))
    blocky = _neighbour_agreement(inverse, grid, visible=True)
    plain = _neighbour_agreement(scattered, grid, visible=True)
    assert plain < 0.3  # ≈ keep ratio 0.2 for independent tokens
    assert blocky > 0.6


def test_block_mode_hides_clumps() -> None:
    grid = (8, 64)
    sample = build_masker("inverse_block", mask_ratio=0.4, inverse=False)(16, grid, _gen(0))
    assert _neighbour_agreement(sample, grid, visible=False) > 0.6
    assert (
        _neighbour_agreement(
            build_masker("random", mask_ratio=0.4)(16, grid, _gen(0)), grid, visible=False
        )
        < 0.5
    )


def test_cluster_masks_hide_clumps_and_leave_clumped_holes() -> None:
    grid = (8, 64)
    clustered = build_masker("cluster")(16, grid, _gen(0))
    scattered = build_masker("random", mask_ratio=400 / 512)(16, grid, _gen(0))
    assert (
        _neighbour_agreement(clustered, grid, visible=True)
        > _neighbour_agreement(scattered, grid, visible=True) + 0.15
    )


@settings(max_examples=20, deadline=None)
@given(grid=_grids(min_axis=2), span=st.integers(1, 6), seed=st.integers(0, 2**31 - 1))
def test_time_spans_hide_whole_columns_and_freq_spans_whole_rows(
    grid: tuple[int, int], span: int, seed: int
) -> None:
    n_freq, n_time = grid
    time = build_masker("time_span", mask_ratio=0.5, span=span)(3, grid, _gen(seed))
    cols = time.masked.reshape(3, n_time, n_freq)
    assert bool((cols.all(dim=2) | (~cols).all(dim=2)).all())  # each column all or nothing
    assert cols.all(dim=2).sum(dim=1).tolist() == [masked_count(n_time, 0.5)] * 3
    freq = build_masker("freq_span", mask_ratio=0.5, span=span)(3, grid, _gen(seed))
    rows = freq.masked.reshape(3, n_time, n_freq)
    assert bool((rows.all(dim=1) | (~rows).all(dim=1)).all())
    assert rows.all(dim=1).sum(dim=1).tolist() == [masked_count(n_freq, 0.5)] * 3


def test_long_time_spans_are_contiguous() -> None:
    sample = build_masker("time_span", mask_ratio=0.3, span=10)(8, (4, 100), _gen(3))
    cols = sample.masked.reshape(8, 100, 4)[:, :, 0].int()
    starts = (cols[:, 1:] - cols[:, :-1] == 1).sum(dim=1) + cols[:, 0]
    assert float(starts.float().mean()) <= 4.5  # 30 hidden columns in about 3 runs, not 30


def test_group_random_hides_whole_groups_but_one() -> None:
    n_freq, n_time = 8, 20
    sample = build_masker("group_random", mask_ratio=0.5, group=(n_freq, 1))(
        5, (n_freq, n_time), _gen(2)
    )
    cols = sample.masked.reshape(5, n_time, n_freq)
    partial = ~(cols.all(dim=2) | (~cols).all(dim=2))
    assert bool((partial.sum(dim=1) <= 1).all())  # at most the last group is cut


def test_unknown_names_and_options_name_the_nearest() -> None:
    with pytest.raises(RegistryError, match="inverse_block"):
        build_masker("inverse_blok")
    with pytest.raises(ConfigError, match="mask_ratio"):
        build_masker("random", mask_ratoi=0.5)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        build_masker("cluster", mask_ratio=1.0)
