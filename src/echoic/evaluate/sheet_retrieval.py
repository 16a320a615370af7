"""Audio–sheet retrieval on a ``sheet_snippets`` split: snippets both ways, and whole pieces.

Every snippet of the split is embedded by a :class:`~echoic.objectives.sheet.SheetModel` (audio
clip and image); ``similarity[a, i]`` is the cosine of audio ``a`` and image ``i`` (the same
snippet when ``a == i``).

* Snippet retrieval, audio → sheet (``a2s``: each clip queries all images) and sheet → audio
  (``s2a``): ``R@k`` (the query's own snippet among the ``k`` nearest, k = 1, 5) and ``MRR``
  (mean of 1 / its rank), over all the split's snippets; ranks by exact cosine, ties to the lower
  index (:func:`echoic.evaluate.textretrieval.ranking_scores`, whose mAP with one relevant item
  per query is the MRR).
* Piece identification (``piece_acc``): each piece's audio snippets query the pieces; a piece
  scores the mean similarity between the query's clips and its own images (the mean, not the sum,
  so long pieces are not favoured); the best-scoring piece is the answer. ``piece_acc_vote``:
  the majority of the clips' top-1 images' pieces instead (ties to the higher mean similarity).

:func:`chance_levels` gives what random similarities score: ``R@k = k / N``, ``MRR = H_N / N``
(``H_N`` the harmonic number), piece accuracy ``1 / pieces``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from echoic.evaluate.textretrieval import ranking_scores
from echoic.objectives.sheet import SheetModel
from echoic.tasks.sheet_pairs import SheetPairs

__all__ = [
    "KS",
    "METRICS",
    "chance_levels",
    "piece_identification",
    "sheet_retrieval",
    "similarity_matrix",
    "snippet_retrieval",
]

KS = (1, 5)
METRICS = (
    *(f"a2s_R@{k}" for k in KS),
    "a2s_MRR",
    *(f"s2a_R@{k}" for k in KS),
    "s2a_MRR",
    "piece_acc",
    "piece_acc_vote",
)


def snippet_retrieval(similarity: np.ndarray) -> dict[str, float]:
    """``a2s_R@k``, ``a2s_MRR``, ``s2a_R@k``, ``s2a_MRR`` of a square ``(N, N)`` audio × image
    similarity whose pairs are its diagonal."""
    if similarity.ndim != 2 or similarity.shape[0] != similarity.shape[1]:
        raise ValueError(f"expected a square (N, N) similarity; found {similarity.shape}")
    relevant = np.eye(len(similarity), dtype=bool)
    out: dict[str, float] = {}
    for direction, matrix in (("a2s", similarity), ("s2a", similarity.T)):
        scores = ranking_scores(matrix, relevant, KS)
        for k in KS:
            out[f"{direction}_R@{k}"] = scores[f"R@{k}"]
        out[f"{direction}_MRR"] = scores["mAP"]  # one relevant item: AP = 1 / rank
    return out


def piece_identification(similarity: np.ndarray, pieces: Sequence[str]) -> dict[str, float]:
    """``piece_acc`` and ``piece_acc_vote`` (module docstring) of an ``(N, N)`` audio × image
    similarity whose row / column ``i`` belongs to ``pieces[i]``."""
    names = sorted(set(pieces))
    owner = np.array([names.index(p) for p in pieces])
    members = [np.flatnonzero(owner == j) for j in range(len(names))]
    # mean[p, q]: mean similarity of piece p's clips to piece q's images
    mean = np.array([[similarity[np.ix_(a, i)].mean() for i in members] for a in members])
    top1 = owner[np.argmax(similarity, axis=1)]  # argmax: ties to the lower index
    hits, votes_hit = 0, 0
    for p, clips in enumerate(members):
        hits += int(np.argmax(mean[p]) == p)
        votes = np.bincount(top1[clips], minlength=len(names))
        tied = np.flatnonzero(votes == votes.max())
        votes_hit += int(tied[np.argmax(mean[p, tied])] == p)
    return {"piece_acc": hits / len(names), "piece_acc_vote": votes_hit / len(names)}


def chance_levels(snippets: int, pieces: int) -> dict[str, float]:
    """What random similarities score on ``snippets`` snippets of ``pieces`` pieces (expected)."""
    mrr = float(np.sum(1.0 / np.arange(1, snippets + 1)) / snippets)
    out = {}
    for direction in ("a2s", "s2a"):
        for k in KS:
            out[f"{direction}_R@{k}"] = min(1.0, k / snippets)
        out[f"{direction}_MRR"] = mrr
    out["piece_acc"] = out["piece_acc_vote"] = 1.0 / pieces
    return out


def similarity_matrix(model: SheetModel, pairs: SheetPairs) -> np.ndarray:
    """``(N, N)`` cosine of every clip of ``pairs`` (rows) with every image (columns)."""
    audio = model.embed_waves(pairs.audio).double().numpy()
    images = model.embed_pages(pairs.images).double().numpy()
    return np.asarray(audio @ images.T)


def sheet_retrieval(model: SheetModel, pairs: SheetPairs) -> dict[str, float]:
    """Every metric of :data:`METRICS` for ``model`` on ``pairs`` (module docstring)."""
    similarity = similarity_matrix(model, pairs)
    return {**snippet_retrieval(similarity), **piece_identification(similarity, pairs.pieces)}
