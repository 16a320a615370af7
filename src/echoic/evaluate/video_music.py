"""Video–music retrieval scores: the paired clip, the label agreement α controls, and prompts.

Every clip of a split is a visual stream (query side) and a music stream (item side); row / column
``i`` of a ``(N, N)`` visual × music similarity is clip ``i``, so the pairs are its diagonal.
Ranks are by similarity, ties to the lower index (``np.argsort(-s, kind="stable")``).

* :func:`retrieval_scores`: visual → music (``v2m``: each visual stream queries every music clip)
  and music → visual (``m2v``) ``R@1``, ``R@5`` (the paired clip among the first k) and ``MRR``
  (mean of 1 / its rank; :func:`echoic.evaluate.textretrieval.ranking_scores`, whose mAP with one
  relevant item is the MRR).
* :func:`label_agreement`: the mean over queries of the share of its top ``k`` items whose label
  is the query's own (``agree@k``) — what α moves in the semi-supervised model;
  :func:`chance_agreement` is its expectation under a random ranking.
* :func:`prompt_match`: the mean share of the top ``k`` items that fit the query's *prompt*
  (``matches[q, i]``: item ``i``'s labels are what prompt ``q`` asks for) — what a text-guided
  model should raise whether or not the prompt describes the paired clip.
* :func:`alpha_sweep` (seed 14) and :func:`prompt_sweep` (seed 23) run a model over a split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from echoic.evaluate.textretrieval import ranking_scores
from echoic.objectives.video_music import SemiSupervisedModel, StreamInput, mix_similarity
from echoic.objectives.video_music_text import TrimodalModel

__all__ = [
    "KS",
    "alpha_sweep",
    "chance_agreement",
    "label_agreement",
    "prompt_match",
    "prompt_sweep",
    "retrieval_scores",
]

KS = (1, 5)
AGREE_K = 5


def _square(similarity: np.ndarray) -> np.ndarray:
    similarity = np.asarray(similarity, dtype=np.float64)
    if similarity.ndim != 2 or similarity.shape[0] != similarity.shape[1]:
        raise ValueError(f"expected a square (N, N) similarity; found {similarity.shape}")
    return similarity


def retrieval_scores(similarity: np.ndarray) -> dict[str, float]:
    """``v2m_R@k``, ``v2m_MRR``, ``m2v_R@k``, ``m2v_MRR`` of a ``(N, N)`` visual × music
    similarity whose pairs are its diagonal."""
    similarity = _square(similarity)
    relevant = np.eye(len(similarity), dtype=bool)
    out: dict[str, float] = {}
    for direction, matrix in (("v2m", similarity), ("m2v", similarity.T)):
        scores = ranking_scores(matrix, relevant, KS)
        for k in KS:
            out[f"{direction}_R@{k}"] = scores[f"R@{k}"]
        out[f"{direction}_MRR"] = scores["mAP"]
    return out


def _top(similarity: np.ndarray, k: int) -> np.ndarray:
    if not 1 <= k <= similarity.shape[1]:
        raise ValueError(f"k must be in 1..{similarity.shape[1]}; found {k}")
    return np.argsort(-similarity, axis=1, kind="stable")[:, :k]


def label_agreement(
    similarity: np.ndarray, query_labels: Sequence[int], item_labels: Sequence[int], k: int = 5
) -> float:
    """Mean share of each query's top ``k`` items (``(Q, N)`` similarity) sharing its label."""
    similarity = np.asarray(similarity, dtype=np.float64)
    queries, items = np.asarray(query_labels), np.asarray(item_labels)
    if similarity.shape != (len(queries), len(items)):
        raise ValueError(
            f"expected a ({len(queries)}, {len(items)}) similarity for the labels; found "
            f"{similarity.shape}"
        )
    return float((items[_top(similarity, k)] == queries[:, None]).mean())


def chance_agreement(query_labels: Sequence[int], item_labels: Sequence[int]) -> float:
    """:func:`label_agreement` expected under a uniformly random ranking (any ``k``)."""
    queries, items = np.asarray(query_labels), np.asarray(item_labels)
    return float((items[None, :] == queries[:, None]).mean())


def prompt_match(similarity: np.ndarray, matches: np.ndarray, k: int = 5) -> float:
    """Mean share of each query's top ``k`` items that fit its prompt (``matches`` ``(Q, N)``)."""
    similarity = np.asarray(similarity, dtype=np.float64)
    if matches.shape != similarity.shape:
        raise ValueError(f"matches {matches.shape} must have the similarity's {similarity.shape}")
    return float(np.take_along_axis(matches, _top(similarity, k), axis=1).mean())


def alpha_sweep(
    model: SemiSupervisedModel,
    visual: StreamInput,
    music: StreamInput,
    labels: Sequence[int],
    alphas: Sequence[float] = (0.0, 0.5, 1.0),
) -> dict[str, dict[str, float]]:
    """For each α: :func:`retrieval_scores` of ``α · sim_self + (1 − α) · sim_label`` and
    ``v2m_agree@5`` / ``m2v_agree@5`` (:func:`label_agreement`); keys ``f"{α:g}"``."""
    sim_self, sim_label = (s.double().numpy() for s in model.similarities(visual, music))
    out = {}
    for alpha in alphas:
        similarity = mix_similarity(sim_self, sim_label, alpha)
        scores = retrieval_scores(similarity)
        scores[f"v2m_agree@{AGREE_K}"] = label_agreement(similarity, labels, labels, AGREE_K)
        scores[f"m2v_agree@{AGREE_K}"] = label_agreement(similarity.T, labels, labels, AGREE_K)
        out[f"{alpha:g}"] = scores
    return out


def prompt_sweep(
    model: TrimodalModel,
    visual: StreamInput,
    music: StreamInput,
    prompts: Mapping[str, tuple[torch.Tensor | None, np.ndarray]],
) -> dict[str, dict[str, float]]:
    """For each named prompt condition ``(text (N, Dt) or None, matches (N, N))``: visual →
    music ``R@k`` / ``MRR`` of the paired clip and ``prompt_match@5``."""
    out = {}
    for name, (text, matches) in prompts.items():
        similarity = model.similarity(visual, music, text).double().numpy()
        scores = {k: v for k, v in retrieval_scores(similarity).items() if k.startswith("v2m")}
        scores[f"prompt_match@{AGREE_K}"] = prompt_match(similarity, matches, AGREE_K)
        out[name] = scores
    return out
