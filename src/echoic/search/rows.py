"""Parquet files written by ``echoic embed`` as index rows: one vector per clip or per time window.

A Parquet file of ``echoic embed`` holds one row per audio file — ``path``, ``duration_s``,
``embedding`` (the scene vector) and, with ``--timestamps``, ``timestamps_ms`` and
``timestamp_embeddings`` — and, in its schema metadata under ``echoic``, the model's label and
identity. A **scene** index takes one vector per file (offset 0, the file's duration). A
**timestamp** index takes one vector per window of ``window_s`` every ``hop_s``: the mean of the
timestamp embeddings whose time falls in ``[offset, offset + window_s)``; the last window reaches
the end of the file, and a file shorter than a window gives one window over all its frames.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from echoic.errors import EchoicError

META_KEY = b"echoic"
LEVELS = ("scene", "timestamp")


@dataclass
class EmbeddingSource:
    """What one ``echoic embed`` Parquet file says about itself (nothing is read but the schema)."""

    path: Path
    meta: dict[str, Any]
    dims: int
    timestamps: bool
    rows: int

    @property
    def identity(self) -> str:
        return str(self.meta.get("model_identity"))

    @property
    def model(self) -> str:
        return str(self.meta.get("model"))


def read_source(path: str | os.PathLike[str]) -> EmbeddingSource:
    """The :class:`EmbeddingSource` of ``path``, or an error saying what was expected."""
    path = Path(path)
    if not path.is_file():
        raise EchoicError(
            f"{path}: no such file; expected a Parquet file written by `echoic embed ... --out "
            f"{path.name}`"
        )
    try:
        schema = pq.read_schema(path)
        rows = pq.ParquetFile(path).metadata.num_rows
    except Exception as err:
        raise EchoicError(
            f"{path}: not a readable Parquet file ({type(err).__name__}: {err}); expected the "
            "output of `echoic embed`"
        ) from None
    raw = (schema.metadata or {}).get(META_KEY)
    field = schema.field("embedding") if "embedding" in schema.names else None
    if raw is None or field is None or not pa.types.is_fixed_size_list(field.type):
        raise EchoicError(
            f"{path}: expected Parquet written by `echoic embed` (an 'embedding' column and "
            f"'echoic' schema metadata naming the model); found columns {schema.names}. Embed "
            "the audio with `echoic embed AUDIO --out EMB.parquet` first"
        )
    meta = json.loads(raw)
    return EmbeddingSource(
        path,
        meta,
        int(field.type.list_size),
        "timestamp_embeddings" in schema.names,
        int(rows),
    )


@dataclass
class Rows:
    """Index rows: ``vectors`` ``(N, D)`` float32 and where each comes from."""

    vectors: np.ndarray
    paths: list[str]
    offsets_s: np.ndarray
    durations_s: np.ndarray
    clip_durations_s: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    @staticmethod
    def empty(dims: int) -> Rows:
        z = np.zeros(0, np.float64)
        return Rows(np.zeros((0, dims), np.float32), [], z, z.copy(), z.copy())

    def take(self, keep: np.ndarray) -> Rows:
        return Rows(
            self.vectors[keep],
            [self.paths[i] for i in keep],
            self.offsets_s[keep],
            self.durations_s[keep],
            self.clip_durations_s[keep],
        )

    @staticmethod
    def concat(parts: list[Rows], dims: int) -> Rows:
        if not parts:
            return Rows.empty(dims)
        return Rows(
            np.concatenate([p.vectors for p in parts]),
            [path for p in parts for path in p.paths],
            np.concatenate([p.offsets_s for p in parts]),
            np.concatenate([p.durations_s for p in parts]),
            np.concatenate([p.clip_durations_s for p in parts]),
        )


def windows(
    times_ms: np.ndarray, frames: np.ndarray, duration_s: float, window_s: float, hop_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean frame embedding per window (see module docstring).

    times_ms ``(T,)`` ascending, frames ``(T, D)``. Returns ``(W, D)`` float32 vectors, ``(W,)``
    offsets and ``(W,)`` durations in seconds; windows without a frame are left out.
    """
    dims = frames.shape[1]
    if frames.shape[0] == 0:
        return np.zeros((0, dims), np.float32), np.zeros(0), np.zeros(0)
    n = 1 if duration_s <= window_s else math.ceil((duration_s - window_s) / hop_s - 1e-9) + 1
    starts = np.arange(n) * hop_s
    ends = np.minimum(starts + window_s, duration_s)
    if n == 1:  # one window holds every frame, even those stamped at the very end
        ends = np.array([max(duration_s, float(times_ms[-1]) / 1000.0 + 1e-6)])
    lo = np.searchsorted(times_ms, starts * 1000.0, "left")
    hi = np.searchsorted(times_ms, ends * 1000.0, "left")
    if n > 1:  # the last window takes the frames stamped at the end of the file too
        hi[-1] = frames.shape[0]
    total = np.concatenate([np.zeros((1, dims)), np.cumsum(frames, 0, dtype=np.float64)])
    keep = hi > lo
    vectors = (total[hi[keep]] - total[lo[keep]]) / (hi[keep] - lo[keep])[:, None]
    return vectors.astype(np.float32), starts[keep], (ends - starts)[keep]


def iter_rows(
    source: EmbeddingSource,
    level: str,
    window_s: float = 1.0,
    hop_s: float = 0.5,
    batch_rows: int = 256,
) -> Iterator[tuple[int, Rows]]:
    """``(files read, rows)`` of ``source`` batch by batch, at ``level`` (scene or timestamp)."""
    if level == "timestamp" and not source.timestamps:
        raise EchoicError(
            f"{source.path}: a timestamp index needs timestamp embeddings, but this file has none "
            "(written without --timestamps). Re-embed with `echoic embed AUDIO --timestamps --out "
            f"{source.path.name}` (into a new file), or build a scene index (no --timestamps)"
        )
    columns = ["path", "duration_s", "embedding"]
    if level == "timestamp":
        columns += ["timestamps_ms", "timestamp_embeddings"]
    for batch in pq.ParquetFile(source.path).iter_batches(batch_size=batch_rows, columns=columns):
        yield batch.num_rows, _batch_rows(batch, source.dims, level, window_s, hop_s)


def _batch_rows(
    batch: pa.RecordBatch, dims: int, level: str, window_s: float, hop_s: float
) -> Rows:
    paths = [str(p) for p in batch.column("path").to_pylist()]
    durations = np.asarray(batch.column("duration_s").to_numpy(zero_copy_only=False), np.float64)
    if level == "scene":
        flat = batch.column("embedding").flatten().to_numpy(zero_copy_only=False)
        vectors = np.asarray(flat, np.float32).reshape(len(paths), dims)
        return Rows(vectors, paths, np.zeros(len(paths)), durations.copy(), durations)
    times_col = batch.column("timestamps_ms")
    emb_col = batch.column("timestamp_embeddings")
    offsets = np.asarray(emb_col.offsets.to_numpy(zero_copy_only=False), np.int64)
    offsets = offsets - offsets[0]  # flatten() starts at the first row's values
    frames = np.asarray(emb_col.flatten().flatten().to_numpy(zero_copy_only=False), np.float32)
    frames = frames.reshape(-1, dims)
    times = np.asarray(times_col.flatten().to_numpy(zero_copy_only=False), np.float64)
    parts = []
    for i, path in enumerate(paths):
        lo, hi = offsets[i], offsets[i + 1]
        vec, starts, lengths = windows(times[lo:hi], frames[lo:hi], durations[i], window_s, hop_s)
        n = len(starts)
        parts.append(Rows(vec, [path] * n, starts, lengths, np.full(n, durations[i])))
    return Rows.concat(parts, dims)
