"""Segmentation metrics: the boundary matcher against a brute force, hand-computed scores and
R-values, empty lists, syllable counts, tokens/s and token purity."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from echoic.errors import ConfigError
from echoic.evaluate.segmentation import (
    BoundaryScores,
    boundaries_of,
    boundary_scores,
    count_scores,
    label_purity,
    match_boundaries,
    token_purity,
    tokens_per_second,
)


def brute_force_hits(pred: list[float], ref: list[float], tol: float) -> int:
    """The most hits over every assignment of each prediction to a distinct reference or none
    (the reference the matcher must reach; exponential, for a handful of boundaries)."""
    best = 0
    for choice in itertools.product([None, *range(len(ref))], repeat=len(pred)):
        used = [j for j in choice if j is not None]
        if len(used) != len(set(used)):
            continue
        if all(
            j is None or abs(p - ref[j]) <= tol + 1e-9 for p, j in zip(pred, choice, strict=True)
        ):
            best = max(best, len(used))
    return best


def test_matcher_finds_as_many_hits_as_a_brute_force() -> None:
    rng = np.random.default_rng(0)
    crowded = 0
    for _ in range(400):
        n_pred, n_ref = rng.integers(0, 6, size=2)
        # times on a 10 ms grid within 0.4 s: boundaries often within 50 ms of several others
        pred = sorted((rng.integers(0, 40, n_pred) / 100).tolist())
        ref = sorted((rng.integers(0, 40, n_ref) / 100).tolist())
        pairs = match_boundaries(pred, ref, 0.05)
        assert len(pairs) == brute_force_hits(pred, ref, 0.05), (pred, ref, pairs)
        assert len({i for i, _ in pairs}) == len({j for _, j in pairs}) == len(pairs)
        assert all(abs(pred[i] - ref[j]) <= 0.05 + 1e-9 for i, j in pairs)
        crowded += brute_force_hits(pred, ref, 0.05) < min(n_pred, n_ref)
    assert crowded > 20  # the random lists did exercise conflicts


def test_matcher_beats_nearest_first_greedy() -> None:
    # nearest-first would pair 0.10-0.12 (0.02 apart) and leave 0.14 and 0.06 unmatched
    assert len(match_boundaries([0.10, 0.14], [0.06, 0.12], 0.05)) == 2
    assert len(match_boundaries([0.14, 0.10], [0.12, 0.06], 0.05)) == 2  # order does not matter


def test_hand_computed_scores_and_r_value() -> None:
    scores = boundary_scores([0.10, 0.32, 0.50, 0.90], [0.12, 0.30, 0.36, 0.70], 0.05)
    assert (scores.hits, scores.n_predicted, scores.n_reference) == (2, 4, 4)
    assert scores.precision == scores.recall == scores.f1 == 0.5
    # OS = 0, r1 = 0.5, r2 = (0 + 0.5 - 1) / sqrt(2)
    assert scores.r_value == pytest.approx(1 - (0.5 + 0.5 / math.sqrt(2)) / 2)
    # 3 hits of 6 predictions against 4 references: OS = 0.5 = recall / precision - 1
    over = boundary_scores([0.1, 0.2, 0.3, 0.45, 0.6, 0.8], [0.1, 0.3, 0.6, 1.0], 0.02)
    assert (over.hits, over.precision, over.recall) == (3, 0.5, 0.75)
    assert over.over_segmentation == pytest.approx(over.recall / over.precision - 1) == 0.5
    r1 = math.sqrt(0.25**2 + 0.5**2)
    r2 = (-0.5 + 0.75 - 1) / math.sqrt(2)
    assert over.r_value == pytest.approx(1 - (r1 + abs(r2)) / 2)
    assert over.f1 == pytest.approx(2 * 0.5 * 0.75 / 1.25)


def test_perfect_and_tolerance_edges() -> None:
    perfect = boundary_scores([0.2, 0.5, 0.9], [0.9, 0.2, 0.5])
    assert perfect.f1 == perfect.r_value == 1.0
    assert boundary_scores([0.15], [0.10], 0.05).hits == 1  # exactly at the tolerance counts
    assert boundary_scores([0.151], [0.10], 0.05).hits == 0
    assert boundary_scores([0.3, 0.3], [0.3], 0.05).hits == 1  # each reference once


def test_empty_lists() -> None:
    both = boundary_scores([], [])
    assert both.precision == both.recall == both.f1 == both.r_value == 1.0
    nothing_found = boundary_scores([], [0.2, 0.4])
    assert nothing_found.precision == nothing_found.recall == nothing_found.f1 == 0.0
    assert nothing_found.over_segmentation == -1.0
    assert nothing_found.r_value == pytest.approx(1 - math.sqrt(2) / 2)  # r1 = sqrt 2, r2 = 0
    nothing_to_find = boundary_scores([0.2], [])
    assert nothing_to_find.precision == nothing_to_find.recall == 0.0
    assert math.isnan(nothing_to_find.r_value)
    assert match_boundaries([], []) == []


def test_corpus_scores_add_counts() -> None:
    utterances = [([0.1, 0.3], [0.1]), ([0.5], [0.5, 0.9]), ([], [])]
    total = sum(boundary_scores(p, r) for p, r in utterances)
    assert total == BoundaryScores(2, 3, 3)
    assert total.precision == total.recall == pytest.approx(2 / 3)


def test_errors_say_what_is_wrong() -> None:
    with pytest.raises(ConfigError, match="tolerance_s"):
        match_boundaries([0.1], [0.1], -0.01)
    with pytest.raises(ConfigError, match="finite"):
        boundary_scores([float("nan")], [0.1])
    with pytest.raises(ConfigError, match="one predicted and one reference count"):
        count_scores([1, 2], [1])


def test_boundaries_of_segments_count_shared_edges_once() -> None:
    edges = boundaries_of([0.0, 0.2, 0.5], [0.2, 0.4, 0.7])
    assert edges.tolist() == [0.0, 0.2, 0.4, 0.5, 0.7]
    assert boundaries_of([], []).size == 0


def test_counts_rates_and_purity() -> None:
    counts = count_scores([3, 2, 5], [3, 3, 5])
    assert counts.accuracy == pytest.approx(2 / 3)
    assert counts.mean_absolute_error == pytest.approx(1 / 3)
    assert tokens_per_second([4, 6], [2.0, 3.0]) == 2.0
    assert token_purity([0, 0, 0, 1, 1], ["a", "a", "b", "b", "b"]) == pytest.approx(4 / 5)
    # one token per label, two tokens for "a": tokens are pure, labels are not
    assert token_purity([0, 0, 1, 2], ["a", "a", "a", "b"]) == 1.0
    assert label_purity([0, 0, 1, 2], ["a", "a", "a", "b"]) == pytest.approx(3 / 4)
    with pytest.raises(ConfigError, match="audio"):
        tokens_per_second([1], [0.0])
