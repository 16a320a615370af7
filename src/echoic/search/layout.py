"""The index folder: ``index.json`` (what it is), ``index.faiss``, ``items.parquet``, ``vectors.npy``.

::

    IDX/
      index.json      format_version, echoic_version, created / updated (UTC), model (label,
                      identity, source + options to rebuild it, sample rate, config), level
                      (scene | timestamp) with window_s / hop_s, metric, kind, params, dims, count,
                      sources (every Parquet file added, with its row counts)
      index.faiss     the FAISS index (faiss.write_index); FAISS id i is row i of items.parquet
      items.parquet   id (int64), path (string), offset_s, duration_s, clip_duration_s (float64),
                      source (the Parquet file the row came from)
      vectors.npy     (count, dims) float32, the vectors as indexed (L2-normalised for cosine),
                      row i = id i; numpy format, read with np.load(..., mmap_mode="r")

Every file is written to a temporary name and renamed into place, ``index.json`` last; an index
whose files disagree on the row count (an interrupted ``index add``) is refused when opened, with
the fix. Nothing is pickled. The layout is documented for other readers (the web explorer) in
``docs/search.md``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from echoic.config import from_dict, to_dict
from echoic.errors import EchoicError

FORMAT_VERSION = 1
META_FILE = "index.json"
INDEX_FILE = "index.faiss"
ITEMS_FILE = "items.parquet"
VECTORS_FILE = "vectors.npy"

ITEMS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64()),
        pa.field("path", pa.string()),
        pa.field("offset_s", pa.float64()),
        pa.field("duration_s", pa.float64()),
        pa.field("clip_duration_s", pa.float64()),
        pa.field("source", pa.string()),
    ]
)


@dataclass
class ModelInfo:
    """The embedding model of an index.

    ``source`` + ``options`` rebuild it (``echoic.zoo.registry.resolve_model(source, **options)``)
    to embed audio queries; ``None`` when it could not be found at build time (then audio
    queries need ``--model``). ``identity`` is what every query's model must match.
    """

    label: str
    identity: str
    source: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    sample_rate: int | None = None
    config: dict[str, Any] | None = None


@dataclass
class IndexMeta:
    """Contents of ``index.json`` (see module docstring)."""

    model: ModelInfo
    level: str
    metric: str
    kind: str
    dims: int
    params: dict[str, Any] = field(default_factory=dict)
    window_s: float | None = None
    hop_s: float | None = None
    count: int = 0
    sources: list[dict[str, Any]] = field(default_factory=list)
    format_version: int = FORMAT_VERSION
    echoic_version: str = ""
    created: str = ""
    updated: str = ""


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_meta(directory: Path) -> IndexMeta:
    path = Path(directory) / META_FILE
    if not path.is_file():
        raise EchoicError(
            f"{directory}: expected an index folder with {META_FILE}; found none. Build one with "
            "`echoic index build EMB.parquet --out IDX/`"
        )
    raw = json.loads(path.read_text())
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise EchoicError(
            f"{path}: index format_version {version!r}, this echoic reads {FORMAT_VERSION}; "
            "rebuild the index with this echoic (`echoic index build`) or use the echoic that made it"
        )
    return from_dict(IndexMeta, raw, where=str(path))


def atomic(target: Path, write: Callable[[Path], object]) -> None:
    """``write(tmp)`` then rename onto ``target`` (readers never see a half-written file)."""
    tmp = target.with_name(f".{target.name}.tmp{target.suffix}")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_meta(directory: Path, meta: IndexMeta) -> None:
    text = json.dumps(to_dict(meta), indent=1, sort_keys=True) + "\n"
    atomic(Path(directory) / META_FILE, lambda p: p.write_text(text))


def write_items(directory: Path, items: pa.Table) -> None:
    atomic(
        Path(directory) / ITEMS_FILE,
        lambda p: pq.write_table(items, p, compression="zstd", use_dictionary=["path", "source"]),
    )


def write_vectors(directory: Path, vectors: np.ndarray) -> None:
    def save(p: Path) -> None:
        with p.open("wb") as fh:
            np.save(fh, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)

    atomic(Path(directory) / VECTORS_FILE, save)


def read_items(directory: Path) -> pa.Table:
    return pq.read_table(Path(directory) / ITEMS_FILE).cast(ITEMS_SCHEMA)


def read_vectors(directory: Path) -> np.ndarray:
    return np.load(Path(directory) / VECTORS_FILE, mmap_mode="r", allow_pickle=False)


def check_consistent(
    directory: Path, meta: IndexMeta, ntotal: int, items: int, vectors: int
) -> None:
    counts = {META_FILE: meta.count, INDEX_FILE: ntotal, ITEMS_FILE: items, VECTORS_FILE: vectors}
    if len(set(counts.values())) > 1:
        found = ", ".join(f"{k} {v}" for k, v in counts.items())
        raise EchoicError(
            f"{directory}: the index files disagree on the row count ({found}); expected one "
            "count (an `echoic index add` was probably interrupted). Rebuild it: `echoic index "
            "build EMB.parquet ... --out IDX/ --overwrite`"
        )
