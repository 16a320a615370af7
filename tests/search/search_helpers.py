"""Parquet files shaped like `echoic embed` output, from synthetic vectors (no model needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def write_embeddings(
    path: Path,
    vectors: np.ndarray,
    paths: list[str] | None = None,
    identity: str = "synthetic-0",
    model: str = "synthetic (test)",
    frames: list[np.ndarray] | None = None,
    frame_ms: float = 50.0,
) -> Path:
    """An `echoic embed`-style Parquet: ``vectors`` ``(N, D)`` as scene embeddings; ``frames``
    (``(T_i, D)`` per file, every ``frame_ms``) as timestamp embeddings."""
    n, dims = vectors.shape
    paths = paths or [f"/clips/clip{i:05d}.wav" for i in range(n)]
    durations = [1.0] * n if frames is None else [len(f) * frame_ms / 1000 for f in frames]
    meta = {"model": model, "model_identity": identity, "timestamps": frames is not None}
    fields = [
        pa.field("path", pa.string()),
        pa.field("duration_s", pa.float64()),
        pa.field("embedding", pa.list_(pa.float32(), dims)),
    ]
    cols = {
        "path": pa.array(paths, pa.string()),
        "duration_s": pa.array(durations, pa.float64()),
        "embedding": pa.FixedSizeListArray.from_arrays(
            pa.array(vectors.astype(np.float32).reshape(-1)), dims
        ),
    }
    if frames is not None:
        fields += [
            pa.field("timestamps_ms", pa.list_(pa.float64())),
            pa.field("timestamp_embeddings", pa.list_(pa.list_(pa.float32(), dims))),
        ]
        offsets = pa.array(np.cumsum([0] + [len(f) for f in frames]).astype(np.int32))
        times = np.concatenate([(np.arange(len(f)) + 0.5) * frame_ms for f in frames])
        flat = np.concatenate(frames).astype(np.float32).reshape(-1)
        cols["timestamps_ms"] = pa.ListArray.from_arrays(offsets, pa.array(times))
        inner = pa.FixedSizeListArray.from_arrays(pa.array(flat), dims)
        cols["timestamp_embeddings"] = pa.ListArray.from_arrays(offsets, inner)
    schema = pa.schema(fields, metadata={b"echoic": json.dumps(meta)})
    pq.write_table(pa.table(cols, schema=schema), path)
    return path


def clustered(n: int, dims: int, clusters: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` vectors around ``clusters`` random centres, and each one's cluster."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dims)).astype(np.float32)
    labels = rng.integers(0, clusters, n)
    x = centres[labels] + 0.35 * rng.standard_normal((n, dims)).astype(np.float32)
    return x.astype(np.float32), labels
