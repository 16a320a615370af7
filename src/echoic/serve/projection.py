"""The explorer's 2-D map of a collection: UMAP when ``umap-learn`` imports, PCA otherwise.

Computed once per index and cached beside it (``IDX/explorer-map.npz``, NumPy arrays only, no
pickle) under a key of the index's identity, row count and last update, the method and the
sample size: a changed index (``echoic index add``) is mapped again. A collection larger than
``max_points`` is mapped on a seeded sample of that many rows (the browser draws every point;
the others are still searched). The same rows get a k-means cluster each (FAISS k-means, fixed
seed), the colouring of last resort. Coordinates are scaled to [0, 1] between the 0.5th and
99.5th percentiles of each axis; outliers are squashed into a thin margin around it.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from echoic.search.kinds import faiss_module
from echoic.search.layout import IndexMeta, atomic

MAP_FILE = "explorer-map.npz"
MAP_VERSION = 2
MARGIN = 0.04


@dataclass
class CollectionMap:
    """``ids`` ``(P,)`` rows on the map, ``xy`` ``(P, 2)`` in [0, 1], ``clusters`` ``(P,)``."""

    ids: np.ndarray
    xy: np.ndarray
    clusters: np.ndarray
    method: str
    seconds: float = 0.0
    cached: bool = False
    note: str = ""


def umap_available() -> bool:
    try:
        import umap  # noqa: F401
    except Exception:  # not installed, or its numba stack fails to import
        return False
    return True


def _key(meta: IndexMeta, method: str, max_points: int) -> str:
    fields = {
        "version": MAP_VERSION,
        "identity": meta.model.identity,
        "count": meta.count,
        "updated": meta.updated,
        "method": method,
        "max_points": max_points,
    }
    return json.dumps(fields, sort_keys=True)


def sample_rows(count: int, max_points: int, seed: int = 0) -> np.ndarray:
    if count <= max_points:
        return np.arange(count, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(count, max_points, replace=False))


def _scale(xy: np.ndarray) -> np.ndarray:
    """Each axis to [0, 1] between its 0.5th and 99.5th percentiles; the outliers beyond are
    squashed (tanh) into a margin of 0.04 on either side, keeping their order."""
    lo = np.percentile(xy, 0.5, axis=0)
    hi = np.percentile(xy, 99.5, axis=0)
    span = np.where(hi - lo > 1e-12, hi - lo, 1.0)
    v = (xy - lo) / span
    over, under = np.maximum(v - 1.0, 0.0), np.maximum(-v, 0.0)
    v = np.clip(v, 0.0, 1.0) + MARGIN * np.tanh(over / 0.25) - MARGIN * np.tanh(under / 0.25)
    return v.astype(np.float32)


def pca_2d(x: np.ndarray) -> np.ndarray:
    """The first two principal components of ``x`` ``(N, D)`` (``(N, 2)``; zeros when N < 2)."""
    if len(x) < 2:
        return np.zeros((len(x), 2), np.float32)
    centred = x - x.mean(0, keepdims=True)
    _, _, vt = np.linalg.svd(centred[: min(len(x), 100_000)], full_matrices=False)
    components = vt[:2]
    if components.shape[0] < 2:
        components = np.vstack([components, np.zeros_like(components)])
    return (centred @ components.T).astype(np.float32)


def _umap_2d(x: np.ndarray) -> np.ndarray:
    import umap

    reducer = umap.UMAP(n_components=2, n_neighbors=min(15, len(x) - 1), random_state=0)
    return np.asarray(reducer.fit_transform(x), np.float32)


def clusters_of(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """A k-means cluster per row, ``k = √(N/50)`` between 2 and 16 (FAISS, fixed seed)."""
    n = len(x)
    k = int(min(16, max(2, round(math.sqrt(n / 50)))))
    if n < 2 * k:
        return np.zeros(n, np.int64)
    kmeans = faiss_module().Kmeans(
        x.shape[1], k, niter=20, seed=seed, verbose=False, min_points_per_centroid=1
    )
    kmeans.train(np.ascontiguousarray(x, np.float32))
    _, assigned = kmeans.index.search(np.ascontiguousarray(x, np.float32), 1)
    return np.asarray(assigned[:, 0], np.int64)


def _read_cache(path: Path, key: str) -> CollectionMap | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != key:
                return None
            method = json.loads(key)["method"]
            return CollectionMap(
                data["ids"], data["xy"], data["clusters"], method, float(data["seconds"]), True
            )
    except (OSError, KeyError, ValueError):
        return None


def collection_map(
    directory: Path, meta: IndexMeta, vectors: np.ndarray, max_points: int = 50_000
) -> CollectionMap:
    """The map of the index at ``directory`` (cached, see module docstring)."""
    method = "umap" if umap_available() else "pca"
    key = _key(meta, method, max_points)
    cache = Path(directory) / MAP_FILE
    found = _read_cache(cache, key)
    if found is not None:
        return found
    start = time.perf_counter()
    ids = sample_rows(len(vectors), max_points)
    x = np.asarray(vectors[ids], np.float32)
    xy = _scale(_umap_2d(x) if method == "umap" and len(x) > 16 else pca_2d(x))
    clusters = clusters_of(x)
    seconds = time.perf_counter() - start
    result = CollectionMap(ids, xy, clusters, method, seconds)

    def save(p: Path) -> None:
        with p.open("wb") as fh:
            np.savez(
                fh, key=np.array(key), ids=ids, xy=xy, clusters=clusters, seconds=np.array(seconds)
            )

    try:
        atomic(cache, save)
    except OSError as err:  # a read-only index folder: map again next start
        result.note = f"could not cache the map in {cache} ({err}); it is recomputed at each start"
    return result
