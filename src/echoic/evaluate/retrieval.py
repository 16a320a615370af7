"""The ``retrieval`` protocol: query-by-example search scored without training anything.

For every fold plan of a task, each clip of the test split queries an index of the fold's other
clips (its training and validation splits) by exact cosine similarity (L2-normalised vectors, ties
to the lower index: deterministic, so one run per fold whatever ``seeds`` says). A retrieved clip
is relevant when it shares a label with the query (multiclass: the same class; multilabel: any
common label). Event tasks are scored on clips: a clip's vector is the mean of its timestamp
embeddings and its labels are every label of its events.

Metrics per fold (``k`` = 10), over the queries that have at least one relevant clip in the index:

- ``mAP@10``: mean over queries of AP@10 = Σ_{i≤10} P@i · rel_i / min(R, 10), R the number of
  relevant clips in the index (1 when the first min(R, 10) results are all relevant);
- ``P@1``: the fraction of queries whose nearest clip is relevant;
- ``recall@10``: the fraction of queries with a relevant clip among their 10 nearest (recall@k
  of metric-learning retrieval), computed per label (over the queries carrying it; per-label
  values in each run's ``recall@10_by_label``) and averaged over labels (macro).

Why one run per fold and not one over all clips: the folds keep apart what must stay apart (the
same speaker, the same source recording, the same session), so a query never finds its own near
duplicate; and the per-fold spread is reported like every other protocol's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from echoic.evaluate.cache import TaskEmbeddings
from echoic.evaluate.data import gather
from echoic.evaluate.task import FoldPlan, HearTask

K = 10
METRICS = [f"mAP@{K}", "P@1", f"recall@{K}"]
_CHUNK = 512  # queries scored at once


def clip_vectors(
    task: HearTask, emb: TaskEmbeddings, splits: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """``(N, D)`` clip vectors and ``(N, C)`` multi-hot labels of ``splits`` (one row per clip;
    event tasks: the mean of each clip's frames, every label of its events)."""
    if not task.is_event:
        data = gather(task, emb, splits)
        return data.x, data.targets
    vectors, targets = [], []
    for split in splits:
        e = emb.splits[split]
        assert e.offsets is not None
        total = np.concatenate([np.zeros((1, e.x.shape[1])), np.cumsum(e.x, 0, np.float64)])
        counts = np.diff(e.offsets)
        sums = total[e.offsets[1:]] - total[e.offsets[:-1]]
        vectors.append((sums / np.maximum(counts, 1)[:, None]).astype(np.float32))
        y = np.zeros((len(e.files), task.n_labels), np.float32)
        for i, f in enumerate(e.files):
            y[i, task.label_ids([event["label"] for event in task.splits[split][f]])] = 1.0
        targets.append(y)
    return np.concatenate(vectors), np.concatenate(targets)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def nearest(query: np.ndarray, index: np.ndarray, k: int) -> np.ndarray:
    """``(Q, min(k, N))`` row numbers of ``index`` ``(N, D)`` nearest to each ``(Q, D)`` query by
    cosine similarity, nearest first; ties go to the lower row number."""
    k = min(k, index.shape[0])
    q, t = _unit(query), _unit(index)
    out = np.zeros((q.shape[0], k), np.int64)
    for lo in range(0, q.shape[0], _CHUNK):
        sims = q[lo : lo + _CHUNK] @ t.T
        out[lo : lo + _CHUNK] = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return out


def retrieval_scores(
    query_targets: np.ndarray, index_targets: np.ndarray, ids: np.ndarray, k: int = K
) -> dict[str, Any]:
    """The protocol's metrics (module docstring) of the retrieved ``ids`` ``(Q, ≥k)``.

    Returns ``{"test": {metric: value}, "recall@k_by_label": {label index: value},
    "queries": Q, "queries_without_relevant": n}`` (labels are vocabulary indices here).
    """
    qt = query_targets > 0
    it = index_targets > 0
    relevant_total = np.zeros(len(qt), np.int64)
    for lo in range(0, len(qt), _CHUNK):
        shared = qt[lo : lo + _CHUNK].astype(np.float32) @ it.T.astype(np.float32)
        relevant_total[lo : lo + _CHUNK] = (shared > 0).sum(1)
    ids = ids[:, :k]
    rel = (qt[:, None, :] & it[ids]).any(-1)  # (Q, k): does result i share a label?
    scored = relevant_total > 0
    hits_at = np.cumsum(rel, 1)
    precision_at = hits_at / np.arange(1, ids.shape[1] + 1)
    ap = (precision_at * rel).sum(1) / np.maximum(np.minimum(relevant_total, k), 1)
    hit = rel.any(1)
    by_label: dict[int, float] = {}
    for c in range(qt.shape[1]):
        mine = qt[:, c] & scored
        if mine.any():
            by_label[c] = float(hit[mine].mean())
    nan = float("nan")
    test = {
        f"mAP@{k}": float(ap[scored].mean()) if scored.any() else nan,
        "P@1": float(rel[scored, 0].mean()) if scored.any() and ids.shape[1] else nan,
        f"recall@{k}": float(np.mean(list(by_label.values()))) if by_label else nan,
    }
    return {
        "test": test,
        f"recall@{k}_by_label": by_label,
        "queries": len(qt),
        "queries_without_relevant": int((~scored).sum()),
    }


def run_retrieval(
    task: HearTask, emb: TaskEmbeddings, plans: list[FoldPlan]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One run per fold plan (test split queries, training + validation splits indexed)."""
    runs = []
    for f, plan in enumerate(plans):
        index_x, index_y = clip_vectors(task, emb, plan.train + plan.valid)
        query_x, query_y = clip_vectors(task, emb, plan.test)
        ids = nearest(query_x, index_x, K)
        scores = retrieval_scores(query_y, index_y, ids, K)
        by_label = {task.vocabulary[c]: v for c, v in scores[f"recall@{K}_by_label"].items()}
        runs.append(
            {
                "fold": plan.name,
                "fold_index": f,
                "seed": 0,
                "test": scores["test"],
                f"recall@{K}_by_label": by_label,
                "queries": scores["queries"],
                "queries_without_relevant": scores["queries_without_relevant"],
                "index_size": int(index_x.shape[0]),
            }
        )
    hparams = {
        "k": K,
        "similarity": "cosine (L2-normalised vectors), exact, ties to the lower index",
        "index": "the fold's training and validation splits; queries: its test split",
        "relevant": "shares a label with the query",
        "event_tasks": "clip vectors = mean of timestamp embeddings; labels = all event labels",
    }
    return runs, hparams
