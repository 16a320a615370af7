"""The ``knn`` probe's neighbour search: cosine top-k, each pair of splits searched once.

The probe (:func:`knn_probabilities`): rows L2-normalised, the ``k`` most similar training rows
vote with weight ``exp(similarity / temperature)``, probabilities are the normalised votes.

Across the fold plans of a k-fold task the same searches come back: a split is the test split of
one plan and the validation split of the previous one (event tasks query both), and the two plans'
training splits overlap — with 5 folds, 4 distinct (query split, training split) pairs per split
instead of 6. :class:`SplitNeighbours` searches each pair once and keeps its top ``k``; the top
``k`` over a plan's training splits is the top ``k`` of the union of their own top ``k``'s, so the
probabilities are those of :func:`knn_probabilities` over the concatenated training rows (to float
rounding of the similarities, and the order of exact ties).
"""

from __future__ import annotations

import numpy as np
import torch

from echoic.evaluate.cache import TaskEmbeddings

__all__ = ["QUERY_BLOCK", "SplitNeighbours", "knn_probabilities"]

QUERY_BLOCK = 2048
"""Query rows per similarity matrix (memory: ``QUERY_BLOCK × training rows`` floats)."""


def _normalised(x: np.ndarray) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.as_tensor(x, dtype=torch.float32), dim=1)


def _top(query: torch.Tensor, rows: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Q, k)`` similarities and indices of ``query``'s ``k`` most similar normalised ``rows``."""
    sims, index = [], []
    with torch.no_grad():
        for lo in range(0, query.shape[0], QUERY_BLOCK):
            s, i = (query[lo : lo + QUERY_BLOCK] @ rows.T).topk(k, dim=1)
            sims.append(s)
            index.append(i)
    if not sims:
        return torch.zeros(0, k), torch.zeros(0, k, dtype=torch.long)
    return torch.cat(sims), torch.cat(index)


def _vote(
    sims: torch.Tensor, index: torch.Tensor, y: torch.Tensor, temperature: float
) -> np.ndarray:
    w = torch.exp((sims - sims[:, :1]) / temperature)  # shift for stability; ratios equal
    votes = torch.einsum("qk,qkc->qc", w, y[index])
    return (votes / w.sum(1, keepdim=True)).numpy()


def knn_probabilities(
    train_x: np.ndarray, train_targets: np.ndarray, query: np.ndarray, k: int, temperature: float
) -> np.ndarray:
    """``(Q, C)`` weighted-vote probabilities of ``query`` ``(Q, D)`` from ``train_x`` ``(N, D)``."""
    y = torch.as_tensor(train_targets, dtype=torch.float32)
    if query.shape[0] == 0:
        return np.zeros((0, y.shape[1]), np.float32)
    k = min(k, train_x.shape[0])
    sims, index = _top(_normalised(query), _normalised(train_x), k)
    return _vote(sims, index, y, temperature)


class SplitNeighbours:
    """Top-``k`` cosine neighbours between the splits of one task's embeddings, each (query split,
    training split) pair searched once and kept for the plans that need it again."""

    def __init__(self, emb: TaskEmbeddings, k: int) -> None:
        self.emb = emb
        self.k = k
        self._rows: dict[str, torch.Tensor] = {}
        self._pairs: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}
        self.searches = 0  # pairs searched (the rest came from the kept results)

    def _normalised(self, split: str) -> torch.Tensor:
        if split not in self._rows:
            self._rows[split] = _normalised(self.emb.splits[split].x)
        return self._rows[split]

    def _pair(self, query: str, train: str) -> tuple[torch.Tensor, torch.Tensor]:
        if (query, train) not in self._pairs:
            rows = self._normalised(train)
            k = min(self.k, rows.shape[0])
            self._pairs[query, train] = _top(self._normalised(query), rows, k)
            self.searches += 1
        return self._pairs[query, train]

    def probabilities(
        self,
        query: tuple[str, ...],
        train: tuple[str, ...],
        targets: np.ndarray,
        temperature: float,
    ) -> np.ndarray:
        """``(Q, C)`` probabilities of the rows of splits ``query`` (in order) from the rows of
        splits ``train``, whose targets ``targets`` are in that order
        (:func:`echoic.evaluate.data.gather`)."""
        y = torch.as_tensor(targets, dtype=torch.float32)
        sizes = [self.emb.splits[t].x.shape[0] for t in train]
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        k = min(self.k, int(sum(sizes)))
        out = [np.zeros((0, y.shape[1]), np.float32)]
        for q in query:
            if self.emb.splits[q].x.shape[0] == 0 or k == 0:
                continue
            parts = [self._pair(q, t) for t in train]
            sims = torch.cat([s for s, _ in parts], 1)
            index = torch.cat(
                [i + int(start) for (_, i), start in zip(parts, starts, strict=True)], 1
            )
            best, where = sims.topk(k, dim=1)
            out.append(_vote(best, index.gather(1, where), y, temperature))
        return np.concatenate(out)
