"""The FAISS index kinds behind ``echoic index``: how each is made, trained and tuned.

=======  ============================  ==========================================================
kind     FAISS class                   trade
=======  ============================  ==========================================================
flat     IndexFlatIP / IndexFlatL2     exact; memory N·D·4 bytes; query time grows with N
ivf      IndexIVFFlat                  k-means cells, ``nprobe`` of ``nlist`` searched; exact
                                       vectors, so memory as flat; needs training
ivfpq    IndexIVFPQ                    cells + product-quantised codes (``m`` bytes per vector at
                                       8 bits): smallest in memory, approximate scores, so the
                                       ``k · rerank`` best candidates are re-scored exactly from
                                       the stored vectors (memory-mapped ``vectors.npy``)
hnsw     IndexHNSWFlat                 graph search (``M`` links, ``ef_search``): fastest queries,
                                       most memory (vectors + graph), slowest to build
=======  ============================  ==========================================================

Cosine similarity is the inner product of L2-normalised vectors (vectors are normalised before
they are added and queries before they are searched); ``l2`` keeps vectors as they are and scores
by squared Euclidean distance. Parameters left out are chosen from the collection's size and
recorded in the index's ``index.json`` (:func:`resolve_params`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from echoic.errors import ConfigError

KINDS = ("flat", "ivf", "ivfpq", "hnsw")
METRICS = ("cosine", "l2")
TRAINED_KINDS = ("ivf", "ivfpq")
MAX_TRAIN = 200_000
"""At most this many vectors (a seeded sample) train the k-means of ``ivf`` / ``ivfpq``."""

PARAM_NAMES = {
    "flat": (),
    "ivf": ("nlist", "nprobe"),
    "ivfpq": ("nlist", "nprobe", "m", "nbits", "rerank"),
    "hnsw": ("M", "ef_construction", "ef_search"),
}
SEARCH_PARAMS = ("nprobe", "ef_search", "rerank")
"""Parameters that only affect queries: they can be changed at search time."""


def faiss_module() -> Any:
    """The ``faiss`` module (faiss-cpu), or an error saying how to install it."""
    try:
        import faiss
    except ImportError as err:
        raise ConfigError(
            f"echoic search needs FAISS; it did not import ({err}). Install it: pip install faiss-cpu"
        ) from None
    return faiss


def check_choice(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{what} must be one of {', '.join(allowed)}; found {value!r}")


def _divisor_near(dims: int, target: int) -> int:
    """The divisor of ``dims`` closest to ``target`` (smaller on ties)."""
    divisors = [d for d in range(1, dims + 1) if dims % d == 0]
    return min(divisors, key=lambda d: (abs(d - target), d))


def resolve_params(kind: str, dims: int, count: int, given: dict[str, Any]) -> dict[str, Any]:
    """The parameters of ``kind`` for ``count`` vectors of ``dims``: ``given`` ones checked, the
    others chosen (nlist ≈ 4·√N with ≥ 39 training vectors per cell; nprobe = √nlist, at least
    16; m = D / 4 sub-quantisers at most 64 (a divisor of D); 8 bits per code, fewer below
    1,024 vectors (≥ 4 training vectors per centroid); rerank 10 (0: the PQ scores as they are);
    HNSW M 32, ef_construction 80, ef_search 64)."""
    check_choice("--kind", kind, KINDS)
    unknown = sorted(k for k, v in given.items() if v is not None and k not in PARAM_NAMES[kind])
    if unknown:
        raise ConfigError(
            f"{', '.join(unknown)} do(es) not apply to --kind {kind}; its parameters are "
            f"{', '.join(PARAM_NAMES[kind]) or 'none'}"
        )
    out: dict[str, Any] = {}
    if kind in TRAINED_KINDS:
        if count < 1:
            raise ConfigError(f"--kind {kind} needs vectors to train on; found none")
        nlist = given.get("nlist") or max(1, min(round(4 * math.sqrt(count)), count // 39))
        if nlist > count:
            raise ConfigError(
                f"nlist={nlist} cells need at least {nlist} training vectors; found {count}. "
                "Use a smaller --nlist or --kind flat"
            )
        out["nlist"] = int(nlist)
        out["nprobe"] = int(given.get("nprobe") or min(nlist, max(16, round(math.sqrt(nlist)))))
    if kind == "ivfpq":
        m = given.get("m") or _divisor_near(dims, min(64, max(1, dims // 4)))
        if dims % m:
            raise ConfigError(
                f"m={m} must divide the {dims} dimensions (e.g. {_divisor_near(dims, m)})"
            )
        nbits = given.get("nbits") or int(min(8, max(1, math.floor(math.log2(max(2, count // 4))))))
        if 2**nbits > count:
            raise ConfigError(
                f"nbits={nbits} needs at least {2**nbits} training vectors; found {count}. Use a "
                "smaller --nbits or --kind flat"
            )
        out["m"], out["nbits"] = int(m), int(nbits)
        rerank = given.get("rerank")
        out["rerank"] = 10 if rerank is None else int(rerank)
        if out["rerank"] < 0:
            raise ConfigError(f"rerank must be ≥ 0 (0: no re-scoring); found {rerank}")
    if kind == "hnsw":
        out["M"] = int(given.get("M") or 32)
        out["ef_construction"] = int(given.get("ef_construction") or 80)
        out["ef_search"] = int(given.get("ef_search") or 64)
    return out


def make_index(kind: str, metric: str, dims: int, params: dict[str, Any]) -> Any:
    """An empty FAISS index of ``kind`` (untrained for ``ivf`` / ``ivfpq``)."""
    faiss = faiss_module()
    check_choice("--metric", metric, METRICS)
    faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
    if kind == "flat":
        return faiss.IndexFlatIP(dims) if metric == "cosine" else faiss.IndexFlatL2(dims)
    if kind in TRAINED_KINDS:
        quantizer = faiss.IndexFlatIP(dims) if metric == "cosine" else faiss.IndexFlatL2(dims)
        if kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, dims, params["nlist"], faiss_metric)
        else:
            index = faiss.IndexIVFPQ(
                quantizer, dims, params["nlist"], params["m"], params["nbits"], faiss_metric
            )
            index.pq.cp.min_points_per_centroid = 4  # small collections: chosen, not warned about
        return index  # faiss's Python wrapper keeps the quantizer alive with the index
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dims, params["M"], faiss_metric)
        index.hnsw.efConstruction = params["ef_construction"]
        return index
    raise ConfigError(f"--kind must be one of {', '.join(KINDS)}; found {kind!r}")


def train(index: Any, vectors: np.ndarray, seed: int = 0) -> None:
    """Train ``index`` on at most :data:`MAX_TRAIN` of ``vectors`` (a seeded sample; FAISS's
    k-means has its own fixed seed, so a build is repeatable)."""
    if index.is_trained:
        return
    if vectors.shape[0] > MAX_TRAIN:
        rows = np.sort(np.random.default_rng(seed).choice(vectors.shape[0], MAX_TRAIN, False))
        vectors = vectors[rows]
    index.train(np.ascontiguousarray(vectors, dtype=np.float32))


def set_search_params(index: Any, kind: str, params: dict[str, Any]) -> None:
    """Apply the query-time parameters (``nprobe``, ``ef_search``) to an index."""
    if kind in TRAINED_KINDS and params.get("nprobe"):
        index.nprobe = int(params["nprobe"])
    if kind == "hnsw" and params.get("ef_search"):
        index.hnsw.efSearch = int(params["ef_search"])


def normalise(vectors: np.ndarray, metric: str) -> np.ndarray:
    """Vectors as the index holds them: float32, L2-normalised for cosine (zero rows stay 0)."""
    out = np.array(vectors, dtype=np.float32, order="C", copy=True)
    if metric == "cosine" and out.size:
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.where(norms > 0, norms, 1.0)
    return out


def candidates(kind: str, params: dict[str, Any], k: int) -> int:
    """How many results to ask FAISS for: ``k``, or ``k · rerank`` for a re-scored ``ivfpq``."""
    return k * int(params.get("rerank") or 1) if kind == "ivfpq" else k


def rerank(
    queries: np.ndarray, ids: np.ndarray, vectors: np.ndarray, metric: str, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``(Q, k)`` scores and ids of the best ``k`` of each query's candidate ``ids``.

    queries ``(Q, D)`` as indexed (normalised for cosine); ids ``(Q, C)`` (-1: no candidate);
    vectors ``(N, D)``, e.g. the memory-mapped ``vectors.npy`` (only the candidates' rows are
    read). Ties keep FAISS's order.
    """
    valid = ids >= 0
    rows = np.unique(ids[valid])
    worst = -np.inf if metric == "cosine" else np.inf
    if rows.size == 0:
        n = min(k, ids.shape[1])
        return np.full((len(ids), n), worst, np.float32), np.full((len(ids), n), -1, np.int64)
    found = np.asarray(vectors[rows], dtype=np.float32)
    cand = found[np.searchsorted(rows, np.where(valid, ids, rows[0]))]
    if metric == "cosine":
        scores = np.einsum("qd,qcd->qc", queries, cand)
        scores[~valid] = worst
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    else:
        scores = ((cand - queries[:, None, :]) ** 2).sum(-1)
        scores[~valid] = worst
        order = np.argsort(scores, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(scores, order, 1).astype(np.float32)
    top_ids = np.where(np.take_along_axis(valid, order, 1), np.take_along_axis(ids, order, 1), -1)
    return top, top_ids
