"""Video–music retrieval scores against brute-force loops on random similarity matrices with
ties, chance agreement against the mean over random rankings, and the sweeps over a model: α = 1
scores the self-supervised space alone, α = 0 the label space alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from echoic.evaluate.video_music import (
    alpha_sweep,
    chance_agreement,
    label_agreement,
    prompt_match,
    prompt_sweep,
    retrieval_scores,
)
from echoic.objectives.video_music import SemiSupervisedModel, pad_streams
from echoic.objectives.video_music_text import TrimodalModel
from echoic.train.video_music import build_model

STREAM = {"width": 16, "heads": 2}


def tied(n: int, m: int, seed: int) -> np.ndarray:
    """Random similarities on a coarse grid: many ties."""
    return np.random.default_rng(seed).integers(0, 4, (n, m)).astype(np.float64)


def brute_rank(row: np.ndarray, target: int) -> int:
    """1-based rank of ``target``: items scoring higher, or equal with a lower index, first."""
    return 1 + sum(
        row[j] > row[target] or (row[j] == row[target] and j < target) for j in range(len(row))
    )


def brute_top(row: np.ndarray, k: int) -> list[int]:
    return sorted(range(len(row)), key=lambda j: (-row[j], j))[:k]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_retrieval_scores_match_brute_force(seed: int) -> None:
    similarity = tied(12, 12, seed)
    scores = retrieval_scores(similarity)
    for direction, matrix in (("v2m", similarity), ("m2v", similarity.T)):
        ranks = np.array([brute_rank(matrix[q], q) for q in range(12)])
        assert scores[f"{direction}_R@1"] == pytest.approx(np.mean(ranks <= 1))
        assert scores[f"{direction}_R@5"] == pytest.approx(np.mean(ranks <= 5))
        assert scores[f"{direction}_MRR"] == pytest.approx(np.mean(1 / ranks))
    with pytest.raises(ValueError, match="square"):
        retrieval_scores(similarity[:, :5])


@pytest.mark.parametrize("seed", [0, 1])
def test_label_agreement_and_prompt_match_match_brute_force(seed: int) -> None:
    similarity = tied(9, 14, seed)
    rng = np.random.default_rng(seed + 10)
    queries, items = rng.integers(0, 3, 9), rng.integers(0, 3, 14)
    expected = np.mean(
        [[items[j] == queries[q] for j in brute_top(similarity[q], 5)] for q in range(9)]
    )
    assert label_agreement(similarity, queries, items, 5) == pytest.approx(expected)
    matches = rng.random((9, 14)) < 0.4
    expected = np.mean([[matches[q, j] for j in brute_top(similarity[q], 3)] for q in range(9)])
    assert prompt_match(similarity, matches, 3) == pytest.approx(expected)
    with pytest.raises(ValueError, match="k must be"):
        label_agreement(similarity, queries, items, 15)


def test_chance_agreement_is_the_mean_over_random_rankings() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 30)
    runs = [label_agreement(rng.random((30, 30)), labels, labels, 5) for _ in range(400)]
    assert chance_agreement(labels, labels) == pytest.approx(np.mean(runs), abs=0.01)


def streams(n: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return pad_streams(
        [torch.randn(int(t), dim, generator=g) for t in torch.randint(2, 7, (n,), generator=g)]
    )


def test_alpha_sweep_ends_are_the_two_spaces() -> None:
    torch.manual_seed(0)
    model = build_model(
        "semi_supervised", {"visual_dim": 6, "music_dim": 5, "dim": 8, "stream": STREAM}
    )
    assert isinstance(model, SemiSupervisedModel)
    visual, music = streams(15, 6, 0), streams(15, 5, 1)
    labels = [i % 3 for i in range(15)]
    sweep = alpha_sweep(model, visual, music, labels, (0.0, 0.5, 1.0))
    sim_self, sim_label = (s.double().numpy() for s in model.similarities(visual, music))
    for alpha, similarity in (("1", sim_self), ("0", sim_label)):
        expected = retrieval_scores(similarity)
        expected["v2m_agree@5"] = label_agreement(similarity, labels, labels)
        for key, value in expected.items():
            assert sweep[alpha][key] == pytest.approx(value), (alpha, key)
    assert sweep["0.5"] != sweep["1"]


def test_prompt_sweep_scores_each_condition() -> None:
    torch.manual_seed(0)
    model = build_model(
        "trimodal", {"visual_dim": 6, "music_dim": 5, "text_dim": 4, "dim": 8, "stream": STREAM}
    )
    assert isinstance(model, TrimodalModel)
    visual, music = streams(10, 6, 0), streams(10, 5, 1)
    everything, own = np.ones((10, 10), bool), np.eye(10, dtype=bool)
    text = torch.randn(10, 4)
    sweep = prompt_sweep(model, visual, music, {"none": (None, everything), "p": (text, own)})
    assert sweep["none"]["prompt_match@5"] == 1.0
    similarity = model.similarity(visual, music, text).double().numpy()
    assert sweep["p"]["prompt_match@5"] == pytest.approx(
        retrieval_scores(similarity)["v2m_R@5"] / 5
    )
    assert sweep["p"]["v2m_MRR"] == pytest.approx(retrieval_scores(similarity)["v2m_MRR"])
