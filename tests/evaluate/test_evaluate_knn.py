"""The kNN probe's split-pair search gives the probabilities of a search over the concatenated
training rows, and searches each (query split, training split) pair once across the fold plans."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from echoic.evaluate.cache import SplitEmbeddings, TaskEmbeddings
from echoic.evaluate.knn import SplitNeighbours, knn_probabilities


def embeddings(sizes: list[int], dim: int = 16, seed: int = 0) -> TaskEmbeddings:
    rng = np.random.default_rng(seed)
    splits = {
        f"fold{i:02d}": SplitEmbeddings([f"{i}-{j}" for j in range(n)],
                                        rng.standard_normal((n, dim)).astype(np.float32))
        for i, n in enumerate(sizes)
    }  # fmt: skip
    return TaskEmbeddings(splits, 16000, 16000, Path("."), 0.0, True)


def test_split_pairs_give_the_concatenated_search_and_are_searched_once() -> None:
    sizes = [40, 7, 55, 30, 3]  # one split smaller than k
    emb = embeddings(sizes)
    rng = np.random.default_rng(1)
    targets = {s: (rng.random((n, 4)) < 0.3).astype(np.float32) for s, n in
               zip(emb.splits, sizes, strict=True)}  # fmt: skip
    names = list(emb.splits)
    search = SplitNeighbours(emb, k=10)
    for f in range(5):  # hear-eval-kit's k-fold plans: test f, valid f+1, train the rest
        test, valid = (names[f],), (names[(f + 1) % 5],)
        train = tuple(n for n in names if n not in test + valid)
        x = np.concatenate([emb.splits[t].x for t in train])
        y = np.concatenate([targets[t] for t in train])
        for query in (test, valid):
            ours = search.probabilities(query, train, y, temperature=0.07)
            reference = knn_probabilities(x, y, emb.splits[query[0]].x, 10, 0.07)
            np.testing.assert_allclose(ours, reference, atol=1e-5)
    # 5 plans x 2 query splits x 3 training splits = 30 searches without keeping them; each
    # split is searched against the 4 others once
    assert search.searches == 20


def test_multi_split_queries_keep_their_order() -> None:
    emb = embeddings([20, 25, 30])
    y = np.eye(3, dtype=np.float32)[np.arange(30) % 3]
    ours = SplitNeighbours(emb, k=5).probabilities(("fold00", "fold01"), ("fold02",), y, 0.07)
    query = np.concatenate([emb.splits["fold00"].x, emb.splits["fold01"].x])
    reference = knn_probabilities(emb.splits["fold02"].x, y, query, 5, 0.07)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
