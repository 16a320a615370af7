"""Audio–sheet retrieval metrics against brute-force loops on random similarity matrices (ties
included), and chance levels against the mean over random matrices."""

from __future__ import annotations

import numpy as np
import pytest

from echoic.evaluate.sheet_retrieval import (
    chance_levels,
    piece_identification,
    snippet_retrieval,
)


def brute_force_ranks(similarity: np.ndarray) -> np.ndarray:
    """1-based rank of the diagonal item in each row: items scoring higher, or equal with a
    lower index, come first."""
    ranks = []
    for q, row in enumerate(similarity):
        ranks.append(
            1 + sum(row[j] > row[q] or (row[j] == row[q] and j < q) for j in range(len(row)))
        )
    return np.array(ranks)


def brute_force_pieces(similarity: np.ndarray, pieces: list[str]) -> tuple[float, float]:
    names = sorted(set(pieces))
    right, right_vote = 0, 0
    for p in names:
        clips = [i for i, x in enumerate(pieces) if x == p]
        mean = {}
        for q in names:
            images = [j for j, x in enumerate(pieces) if x == q]
            mean[q] = sum(similarity[a, i] for a in clips for i in images) / (
                len(clips) * len(images)
            )
        best = max(names, key=lambda q: (mean[q], -names.index(q)))
        right += best == p
        votes = {q: 0 for q in names}
        for a in clips:
            top = max(range(len(pieces)), key=lambda j: (similarity[a, j], -j))
            votes[pieces[top]] += 1
        most = max(votes.values())
        tied = [q for q in names if votes[q] == most]
        right_vote += max(tied, key=lambda q: (mean[q], -names.index(q))) == p
    return right / len(names), right_vote / len(names)


@pytest.mark.parametrize("seed", range(6))
def test_snippet_metrics_match_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 40))
    similarity = rng.normal(size=(n, n))
    if seed % 2:  # coarse values: many ties
        similarity = np.round(similarity * 2) / 2
    scores = snippet_retrieval(similarity)
    for direction, matrix in (("a2s", similarity), ("s2a", similarity.T)):
        ranks = brute_force_ranks(matrix)
        assert scores[f"{direction}_R@1"] == pytest.approx(np.mean(ranks <= 1))
        assert scores[f"{direction}_R@5"] == pytest.approx(np.mean(ranks <= 5))
        assert scores[f"{direction}_MRR"] == pytest.approx(np.mean(1.0 / ranks))


@pytest.mark.parametrize("seed", range(6))
def test_piece_identification_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(6, 30))
    pieces = [f"p{int(k)}" for k in rng.integers(0, 5, size=n)]
    similarity = rng.normal(size=(n, n)) + 0.8 * np.eye(n) * (seed % 3)
    if seed % 2:
        similarity = np.round(similarity)
    scores = piece_identification(similarity, pieces)
    acc, acc_vote = brute_force_pieces(similarity, pieces)
    assert scores["piece_acc"] == pytest.approx(acc)
    assert scores["piece_acc_vote"] == pytest.approx(acc_vote)


def test_perfect_and_reversed_similarities() -> None:
    n = 12
    pieces = [f"p{i // 4}" for i in range(n)]
    perfect = snippet_retrieval(np.eye(n))
    assert perfect["a2s_R@1"] == perfect["s2a_MRR"] == 1.0
    worst = snippet_retrieval(-np.eye(n))  # the pair is last of every ranking
    assert worst["a2s_R@5"] == 0.0 and worst["a2s_MRR"] == pytest.approx(1 / n)
    block = np.kron(np.eye(3), np.ones((4, 4)))  # clips match every image of their piece
    assert piece_identification(block, pieces) == {"piece_acc": 1.0, "piece_acc_vote": 1.0}


def test_chance_levels_are_the_mean_over_random_similarities() -> None:
    rng = np.random.default_rng(7)
    n, pieces = 30, [f"p{i % 5}" for i in range(30)]
    runs = [rng.normal(size=(n, n)) for _ in range(400)]
    mean = {
        k: np.mean([snippet_retrieval(s)[k] for s in runs])
        for k in ("a2s_R@1", "a2s_R@5", "s2a_MRR")
    }
    chance = chance_levels(n, 5)
    assert mean["a2s_R@1"] == pytest.approx(chance["a2s_R@1"], abs=0.01)
    assert mean["a2s_R@5"] == pytest.approx(chance["a2s_R@5"], abs=0.02)
    assert mean["s2a_MRR"] == pytest.approx(chance["s2a_MRR"], abs=0.01)
    piece = np.mean([piece_identification(s, pieces)["piece_acc"] for s in runs[:200]])
    assert piece == pytest.approx(chance["piece_acc"], abs=0.05)
