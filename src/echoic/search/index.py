"""Build, extend, open and query an index folder (layout: :mod:`echoic.search.layout`).

``build_index`` reads ``echoic embed`` Parquet files (every one embedded by the same model),
turns them into rows (:mod:`echoic.search.rows`), trains and fills a FAISS index of the chosen
kind (:mod:`echoic.search.kinds`) and writes the folder. ``add_to_index`` appends the rows of more
Parquet files without retraining; a row whose ``(path, offset)`` is already in the index is
skipped, so adding a file twice changes nothing. Both refuse Parquet from another model.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from echoic import __version__
from echoic.errors import EchoicError
from echoic.search import kinds
from echoic.search.layout import (
    INDEX_FILE,
    ITEMS_SCHEMA,
    META_FILE,
    IndexMeta,
    ModelInfo,
    atomic,
    check_consistent,
    now,
    read_items,
    read_meta,
    read_vectors,
    write_items,
    write_meta,
    write_vectors,
)
from echoic.search.rows import LEVELS, EmbeddingSource, Rows, iter_rows, read_source

ADD_CHUNK = 16_384  # vectors per faiss.add call (one progress step)


@dataclass
class IndexReport:
    """What a build or an add did."""

    directory: Path
    added: int = 0
    duplicates: int = 0
    files: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"{self.directory}: added {self.added} vector(s) from {self.files} file row(s); "
            f"{self.duplicates} already indexed (skipped) · {self.seconds:.1f} s"
        ]
        return "\n".join(lines + self.notes)


def row_key(path: str, offset_s: float) -> tuple[str, int]:
    """What makes a row unique: its file and its offset in whole milliseconds."""
    return path, round(offset_s * 1000.0)


class SearchIndex:
    """An opened index folder: the FAISS index, its items and vectors, and ``meta``."""

    def __init__(
        self, directory: Path, meta: IndexMeta, index: Any, items: pa.Table, vectors: np.ndarray
    ) -> None:
        self.directory = directory
        self.meta = meta
        self.index = index
        self.items = items
        self.vectors = vectors
        self.params = dict(meta.params)  # query-time settings, with this session's overrides
        kinds.set_search_params(index, meta.kind, meta.params)

    @classmethod
    def open(cls, directory: str | os.PathLike[str]) -> SearchIndex:
        directory = Path(directory)
        meta = read_meta(directory)
        faiss = kinds.faiss_module()
        index = faiss.read_index(str(directory / INDEX_FILE))
        items = read_items(directory)
        vectors = read_vectors(directory)
        check_consistent(directory, meta, index.ntotal, items.num_rows, vectors.shape[0])
        return cls(directory, meta, index, items, vectors)

    def __len__(self) -> int:
        return int(self.meta.count)

    def set_search_params(self, **params: int | None) -> None:
        """Override ``nprobe`` / ``ef_search`` / ``rerank`` for this session (``None`` keeps the
        stored one)."""
        given = {k: v for k, v in params.items() if v is not None}
        wrong = sorted(k for k in given if k not in kinds.PARAM_NAMES[self.meta.kind])
        if wrong:
            raise EchoicError(
                f"{', '.join(wrong)} do(es) not apply to this {self.meta.kind} index; its "
                f"query-time parameters are "
                f"{', '.join(k for k in kinds.SEARCH_PARAMS if k in kinds.PARAM_NAMES[self.meta.kind]) or 'none'}"
            )
        self.params.update(given)
        kinds.set_search_params(self.index, self.meta.kind, given)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(Q, k)`` scores and ids of the ``k`` nearest rows of each ``(Q, D)`` query.

        Scores: cosine similarity (higher is nearer) or squared L2 distance (lower is nearer).
        Fewer than ``k`` hits (a small index, or an IVF cell short of rows) leave id -1. An
        ``ivfpq`` index re-scores its ``k · rerank`` best candidates exactly (``vectors.npy``).
        """
        queries = np.atleast_2d(queries)
        if queries.shape[1] != self.meta.dims:
            raise EchoicError(
                f"query vectors have {queries.shape[1]} dimensions; this index holds "
                f"{self.meta.dims}-d vectors of {self.meta.model.label}"
            )
        queries = kinds.normalise(queries, self.meta.metric)
        fetch = kinds.candidates(self.meta.kind, self.params, int(k))
        scores, ids = self.index.search(queries, fetch)
        if fetch > k:
            return kinds.rerank(queries, np.asarray(ids), self.vectors, self.meta.metric, int(k))
        return np.asarray(scores), np.asarray(ids)

    def vector(self, row: int) -> np.ndarray:
        if not 0 <= row < len(self):
            raise EchoicError(f"row id {row} is not in the index; expected 0..{len(self) - 1}")
        return np.array(self.vectors[row], dtype=np.float32)

    def item(self, row: int) -> dict[str, Any]:
        return {name: self.items.column(name)[row].as_py() for name in self.items.column_names}


def _collect(
    sources: list[EmbeddingSource],
    level: str,
    window_s: float,
    hop_s: float,
    known: set[tuple[str, int]],
    report: IndexReport,
    progress: bool,
) -> tuple[Rows, list[str], list[dict[str, Any]]]:
    """New rows of ``sources`` (rows already in ``known`` skipped), their source names, and a
    record per source for ``index.json``."""
    dims = sources[0].dims
    parts: list[Rows] = []
    names: list[str] = []
    records = []
    bar = tqdm(total=sum(s.rows for s in sources), desc="read", unit="file", disable=not progress)
    for source in sources:
        added = dupes = files = 0
        for n_files, rows in iter_rows(source, level, window_s, hop_s):
            keep = []
            for i, (path, offset) in enumerate(zip(rows.paths, rows.offsets_s, strict=True)):
                key = row_key(path, float(offset))
                if key in known:
                    dupes += 1
                else:
                    known.add(key)
                    keep.append(i)
            if keep:
                parts.append(rows.take(np.asarray(keep, np.int64)))
                names.extend([str(source.path.resolve())] * len(keep))
            added += len(keep)
            files += n_files
            bar.update(n_files)
        report.added += added
        report.duplicates += dupes
        report.files += files
        records.append(
            {
                "path": str(source.path.resolve()),
                "files": files,
                "rows_added": added,
                "rows_skipped": dupes,
                "added": now(),
            }
        )
    bar.close()
    return Rows.concat(parts, dims), names, records


def _check_sources(sources: list[EmbeddingSource], identity: str, label: str, dims: int) -> None:
    for s in sources:
        if s.identity != identity:
            raise EchoicError(
                f"{s.path} was embedded by {s.model!r} (identity {s.identity}); this index holds "
                f"vectors of {label!r} (identity {identity}). An index holds one model's vectors: "
                f"embed the audio with that model, or build another index for this file "
                f"(`echoic index build {s.path} --out OTHER/`)"
            )
        if s.dims != dims:
            raise EchoicError(f"{s.path}: {s.dims}-d embeddings; expected {dims}-d")


def _items(rows: Rows, names: list[str], first_id: int) -> pa.Table:
    n = len(rows)
    return pa.table(
        {
            "id": pa.array(np.arange(first_id, first_id + n, dtype=np.int64)),
            "path": pa.array(rows.paths, pa.string()),
            "offset_s": pa.array(rows.offsets_s, pa.float64()),
            "duration_s": pa.array(rows.durations_s, pa.float64()),
            "clip_duration_s": pa.array(rows.clip_durations_s, pa.float64()),
            "source": pa.array(names, pa.string()),
        },
        schema=ITEMS_SCHEMA,
    )


def _fill(index: Any, vectors: np.ndarray, progress: bool) -> None:
    bar = tqdm(total=len(vectors), desc="index", unit="vec", disable=not progress)
    for lo in range(0, len(vectors), ADD_CHUNK):
        index.add(np.ascontiguousarray(vectors[lo : lo + ADD_CHUNK]))
        bar.update(min(ADD_CHUNK, len(vectors) - lo))
    bar.close()


def _write_all(
    directory: Path, index: Any, items: pa.Table, vectors: np.ndarray, meta: IndexMeta
) -> None:
    faiss = kinds.faiss_module()
    write_vectors(directory, vectors)
    write_items(directory, items)
    atomic(directory / INDEX_FILE, lambda p: faiss.write_index(index, str(p)))
    write_meta(directory, meta)  # last: until it is written, the old index (if any) stays whole


def build_index(
    parquet: list[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    model: ModelInfo | None = None,
    kind: str = "flat",
    metric: str = "cosine",
    level: str = "scene",
    window_s: float = 1.0,
    hop_s: float = 0.5,
    params: dict[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> IndexReport:
    """Index every row of the ``parquet`` files into the folder ``out`` (module docstring).

    ``model`` describes the embedding model (default: label and identity from the Parquet
    metadata only, so audio queries will need ``--model``).
    """
    start = time.perf_counter()
    kinds.check_choice("--kind", kind, kinds.KINDS)
    kinds.check_choice("--metric", metric, kinds.METRICS)
    kinds.check_choice("level", level, LEVELS)
    if level == "timestamp" and not (window_s > 0 and hop_s > 0):
        raise EchoicError(f"--window-s and --hop-s must be > 0; found {window_s}, {hop_s}")
    out = Path(out)
    if (out / META_FILE).exists() and not overwrite:
        raise EchoicError(
            f"{out} already holds an index; add rows to it with `echoic index add {out} "
            "EMB.parquet`, or rebuild it with --overwrite"
        )
    if not parquet:
        raise EchoicError("expected at least one Parquet file written by `echoic embed`")
    sources = [read_source(p) for p in parquet]
    first = sources[0]
    model = model or ModelInfo(label=first.model, identity=first.identity)
    _check_sources(sources, model.identity, model.label, first.dims)
    report = IndexReport(out)
    rows, names, records = _collect(sources, level, window_s, hop_s, set(), report, progress)
    if len(rows) == 0:
        raise EchoicError(f"{', '.join(map(str, parquet))}: no rows to index (empty Parquet)")
    vectors = kinds.normalise(rows.vectors, metric)
    resolved = kinds.resolve_params(kind, first.dims, len(rows), params or {})
    index = kinds.make_index(kind, metric, first.dims, resolved)
    if kind in kinds.TRAINED_KINDS:
        t0 = time.perf_counter()
        kinds.train(index, vectors)
        report.notes.append(
            f"trained {kind} on {min(len(rows), kinds.MAX_TRAIN)} vectors in "
            f"{time.perf_counter() - t0:.1f} s ({resolved})"
        )
    _fill(index, vectors, progress)
    meta = IndexMeta(
        model=model,
        level=level,
        metric=metric,
        kind=kind,
        dims=first.dims,
        params=resolved,
        window_s=window_s if level == "timestamp" else None,
        hop_s=hop_s if level == "timestamp" else None,
        count=len(rows),
        sources=records,
        echoic_version=__version__,
        created=now(),
        updated=now(),
    )
    if out.exists() and overwrite:
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_all(out, index, _items(rows, names, 0), vectors, meta)
    report.seconds = time.perf_counter() - start
    return report


def add_to_index(
    directory: str | os.PathLike[str],
    parquet: list[str | os.PathLike[str]],
    progress: bool = True,
) -> IndexReport:
    """Append the rows of ``parquet`` not yet in the index at ``directory`` (no retraining)."""
    start = time.perf_counter()
    idx = SearchIndex.open(directory)
    meta = idx.meta
    sources = [read_source(p) for p in parquet]
    _check_sources(sources, meta.model.identity, meta.model.label, meta.dims)
    paths = idx.items.column("path").to_pylist()
    offsets = idx.items.column("offset_s").to_pylist()
    known = {row_key(p, o) for p, o in zip(paths, offsets, strict=True)}
    report = IndexReport(idx.directory)
    rows, names, records = _collect(
        sources, meta.level, meta.window_s or 1.0, meta.hop_s or 0.5, known, report, progress
    )
    if len(rows):
        vectors = kinds.normalise(rows.vectors, meta.metric)
        _fill(idx.index, vectors, progress)
        items = pa.concat_tables([idx.items, _items(rows, names, len(idx))])
        everything = np.concatenate([np.asarray(idx.vectors), vectors])
        new_meta = replace(
            meta, count=len(idx) + len(rows), sources=meta.sources + records, updated=now()
        )
        _write_all(idx.directory, idx.index, items, everything, new_meta)
        if meta.kind in kinds.TRAINED_KINDS:
            report.notes.append(
                f"note: the {meta.kind} cells were trained at build time on "
                f"{meta.count} vectors; if the new audio differs much from the old, rebuild "
                "(`echoic index build ... --overwrite`) to retrain them"
            )
    report.seconds = time.perf_counter() - start
    return report
