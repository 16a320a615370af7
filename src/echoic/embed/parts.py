"""The files of one ``echoic embed`` output: rows, part files, their atomic writes and the merge.

``<out>.parts/part-*.parquet`` hold finished rows until the run merges them into ``<out>``; a
re-run skips every path already in ``<out>`` or a part. Both extraction engines (the local loop of
:mod:`echoic.embed.extract` and Ray workers, :mod:`echoic.embed.ray_extract`) write through here.

Crash safety: every file is written to a temporary name unique to its process, flushed to disk
(``fsync``) and renamed into place, so a crash (or a power cut) never leaves a half-written part or
output; temporaries a killed run left are removed by the next run. A failed write removes its
temporary file, and a full disk raises :class:`~echoic.errors.DiskFullError` saying that the
finished parts are kept and a re-run resumes. A part that cannot be read (damaged after it was
written) is moved aside to ``<out>.corrupt-<part name>`` beside ``<out>``, so that its files are
embedded again; an unreadable ``<out>`` stops the run with what to do. ``tests/faults/`` kills,
fills the disk and truncates parts to check all of this.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from echoic import __version__
from echoic.embed.base import ClipEmbedding, EmbeddingModel
from echoic.embed.paged_parquet import LeafSource, PagedParquetWriter
from echoic.embed.timestamps import InterpolatedFrames
from echoic.errors import DiskFullError, EchoicError, is_disk_full

__all__ = [
    "META_KEY",
    "PartTable",
    "Row",
    "atomic_parquet",
    "clean_stale_tmp",
    "durable_replace",
    "make_row",
    "merge",
    "next_part_number",
    "parts_dir",
    "rows_table",
    "run_metadata",
    "scan_done",
    "schema_for",
    "sources",
]

META_KEY = b"echoic"


def parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def run_metadata(embedder: EmbeddingModel, timestamps: bool) -> dict[str, object]:
    return {
        "echoic_version": __version__,
        "model": embedder.label,
        "model_identity": embedder.identity,
        "timestamps": timestamps,
        "sample_rate": embedder.sample_rate,
    }


def schema_for(dim: int, timestamps: bool, meta: dict[str, object]) -> pa.Schema:
    fields = [
        pa.field("path", pa.string()),
        pa.field("duration_s", pa.float64()),
        pa.field("embedding", pa.list_(pa.float32(), dim)),
    ]
    if timestamps:
        fields += [
            pa.field("timestamps_ms", pa.list_(pa.float64())),
            pa.field("timestamp_embeddings", pa.list_(pa.list_(pa.float32(), dim))),
        ]
    return pa.schema(fields, metadata={META_KEY: json.dumps(meta, sort_keys=True)})


@dataclass
class Row:
    """What one file's row holds: only the columns that are written (no native frames)."""

    path: str
    duration_s: float
    scene: np.ndarray  # (D,) float32
    timestamps_ms: np.ndarray | None = None  # (T,) float64
    # (T, D) float32, often a view of the model's frames, or the frames they interpolate (written
    # page by page, never held whole)
    timestamps: np.ndarray | InterpolatedFrames | None = None

    @property
    def nbytes(self) -> int:
        """Bytes the row holds in memory."""
        arrays = (self.scene, self.timestamps_ms, self.timestamps)
        return sum(a.nbytes for a in arrays if a is not None)


@dataclass
class PartTable:
    """A part's rows: ``table`` without the ``lazy`` columns, whose values are computed page by
    page while the part is written (:meth:`PagedParquetWriter.write`)."""

    table: pa.Table
    lazy: dict[str, LeafSource]


class TimestampLeaves:
    """The ``timestamp_embeddings`` leaves of several rows of :class:`InterpolatedFrames`, as a
    :class:`~echoic.embed.paged_parquet.LeafSource` (float32, row after row)."""

    def __init__(self, rows: list[InterpolatedFrames], dim: int) -> None:
        self.rows, self.dim = rows, dim
        self.starts = np.zeros(len(rows) + 1, np.int64)
        np.cumsum([r.n * dim for r in rows], out=self.starts[1:])

    def __getitem__(self, index: slice) -> np.ndarray:
        first, end = int(index.start or 0), int(index.stop)
        parts = []
        r = int(np.searchsorted(self.starts, first, side="right")) - 1
        while r < len(self.rows) and self.starts[r] < end:
            lo, hi = max(first, int(self.starts[r])), min(end, int(self.starts[r + 1]))
            if hi > lo:
                a = (lo - int(self.starts[r])) // self.dim
                b = -(-(hi - int(self.starts[r])) // self.dim)
                block = self.rows[r].rows(a, b).to(torch.float32).numpy().reshape(-1)
                offset = a * self.dim + int(self.starts[r])
                parts.append(block[lo - offset : hi - offset])
            r += 1
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def make_row(path: str, duration_s: float, emb: ClipEmbedding, timestamps: bool) -> Row:
    """The row of one file, sharing memory with ``emb`` (no copy of float32 CPU tensors)."""

    def array(tensor: torch.Tensor, dtype: type) -> np.ndarray:
        return np.ascontiguousarray(tensor.detach().cpu().numpy(), dtype=dtype)

    scene = array(emb.scene, np.float32)
    if not timestamps:
        return Row(path, duration_s, scene)
    times = array(emb.timestamps_ms, np.float64)
    if emb.lazy_timestamps is not None:
        lazy = emb.lazy_timestamps  # rows interpolated in the frames' dtype, as the dense path
        frames = lazy.frames.detach().cpu()
        return Row(path, duration_s, scene, times, InterpolatedFrames(frames, lazy.pos, lazy.n))
    return Row(path, duration_s, scene, times, array(emb.timestamps, np.float32))


def rows_table(rows: list[Row], schema: pa.Schema) -> pa.Table | PartTable:
    """The rows as a table without copying their timestamp arrays (one chunk per row); rows with
    :class:`InterpolatedFrames` give a :class:`PartTable` whose timestamp embeddings are
    interpolated page by page as they are written."""
    dim = schema.field("embedding").type.list_size
    if any(isinstance(r.timestamps, InterpolatedFrames) for r in rows):
        dense = [
            r
            if not isinstance(r.timestamps, InterpolatedFrames)
            else Row(r.path, r.duration_s, r.scene, r.timestamps_ms, None)
            for r in rows
        ]
        lazy = [_as_lazy(r) for r in rows]
        name = "timestamp_embeddings"
        rest = pa.schema([f for f in schema if f.name != name], metadata=schema.metadata)
        table = _dense_table(dense, rest, dim)
        return PartTable(table, {name: TimestampLeaves(lazy, dim)})
    return _dense_table(rows, schema, dim)


def _as_lazy(row: Row) -> InterpolatedFrames:
    if isinstance(row.timestamps, InterpolatedFrames):
        return row.timestamps
    assert row.timestamps is not None, "a row of a timestamp schema has timestamp embeddings"
    return InterpolatedFrames(torch.from_numpy(row.timestamps), None, len(row.timestamps))


def _dense_table(rows: list[Row], schema: pa.Schema, dim: int) -> pa.Table:
    scene = np.stack([r.scene for r in rows]).astype(np.float32, copy=False)
    cols: list[pa.Array | pa.ChunkedArray] = [
        pa.array([r.path for r in rows], pa.string()),
        pa.array([r.duration_s for r in rows], pa.float64()),
        pa.FixedSizeListArray.from_arrays(pa.array(scene.reshape(-1)), dim),
    ]
    if "timestamps_ms" in schema.names:
        times, embs = [], []
        for r in rows:
            assert r.timestamps_ms is not None
            offsets = pa.array(np.array([0, r.timestamps_ms.shape[0]], np.int32))
            times.append(pa.ListArray.from_arrays(offsets, pa.array(r.timestamps_ms)))
            if isinstance(r.timestamps, np.ndarray):
                inner = pa.FixedSizeListArray.from_arrays(pa.array(r.timestamps.reshape(-1)), dim)
                embs.append(pa.ListArray.from_arrays(offsets, inner))
        cols.append(pa.chunked_array(times, schema.field("timestamps_ms").type))
        if "timestamp_embeddings" in schema.names:
            cols.append(pa.chunked_array(embs, schema.field("timestamp_embeddings").type))
    return pa.Table.from_arrays(cols, schema=schema)


def tmp_name(target: Path) -> Path:
    """A temporary file beside ``target``, unique to this process (Ray may run a retried batch
    while the first attempt's process is still finishing)."""
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


def durable_replace(tmp: Path, target: Path) -> None:
    """Flush ``tmp`` to disk, rename it onto ``target`` and flush the folder entry: after a crash
    or a power cut ``target`` is the old file or the whole new one, never an empty or short one."""
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def disk_full(err: OSError, target: Path, what: str) -> DiskFullError:
    """The error for a write of ``target`` that ran out of space (``what``: what is kept)."""
    return DiskFullError(
        f"no space left on the device while writing {target} ({err.strerror}); {what}. Free "
        f"some space on {target.parent} (or pass another --out) and run the same command again: "
        "it resumes from the finished parts."
    )


def atomic_parquet(
    table: pa.Table | PartTable, target: Path, schema: pa.Schema | None = None
) -> None:
    """Write ``table`` to ``target`` atomically (a :class:`PartTable` needs the full ``schema``)."""
    tmp = tmp_name(target)
    try:
        if isinstance(table, PartTable):
            assert schema is not None, "a PartTable is written against the full schema"
            with PagedParquetWriter(tmp, schema) as writer:
                writer.write(table.table, table.lazy)
        else:
            with PagedParquetWriter(tmp, table.schema) as writer:
                writer.write(table)
        durable_replace(tmp, target)
    except OSError as err:
        if is_disk_full(err):
            raise disk_full(err, target, "the parts finished before it are kept") from err
        raise
    finally:
        tmp.unlink(missing_ok=True)  # a failed write (a full disk) leaves no half-written file


def sources(out: Path) -> list[Path]:
    """Finished output and part files, oldest first."""
    parts = sorted(parts_dir(out).glob("part-*.parquet")) if parts_dir(out).is_dir() else []
    return ([out] if out.is_file() else []) + parts


def next_part_number(parts: Path) -> int:
    """One past the highest run number among ``parts/part-NNNNNN*.parquet`` (0 if none): a new
    run's parts sort after every earlier one and never overwrite one, even when a part between
    them was moved aside."""
    numbers = [0]
    for part in parts.glob("part-*.parquet"):
        digits = part.name[len("part-") :].split("-")[0].split(".")[0]
        if digits.isdigit():
            numbers.append(int(digits) + 1)
    return max(numbers)


def clean_stale_tmp(out: Path) -> None:
    """Remove temporary files a killed run left beside ``out`` and among its parts (never a
    finished file)."""
    stale = list(out.parent.glob(f".{out.name}.*tmp"))
    if parts_dir(out).is_dir():
        stale += parts_dir(out).glob(".part-*.tmp")
    for path in stale:
        path.unlink(missing_ok=True)


def scan_done(out: Path, meta: dict[str, object]) -> tuple[set[str], list[str]]:
    """Paths already embedded in ``out`` and its parts, and the parts moved aside because they
    cannot be read. Raises :class:`EchoicError` when earlier output came from another model or
    settings (``meta``: :func:`run_metadata`), or when ``out`` itself cannot be read."""
    done: set[str] = set()
    quarantined: list[str] = []
    for source in sources(out):
        try:
            raw = (pq.read_schema(source).metadata or {}).get(META_KEY)
            paths = pq.read_table(source, columns=["path"])["path"].to_pylist()
        except (OSError, pa.ArrowException) as err:
            if source == out:
                raise EchoicError(
                    f"{out} cannot be read as Parquet ({type(err).__name__}: {err}); expected an "
                    "output of echoic embed. Move it away or delete it, then run again."
                ) from err
            aside = out.with_name(f"{out.name}.corrupt-{source.name}")  # kept past the merge
            os.replace(source, aside)
            quarantined.append(str(aside))
            continue
        found = json.loads(raw) if raw else {}
        mine = {k: meta[k] for k in ("model_identity", "timestamps")}
        theirs = {k: found.get(k) for k in mine}
        if mine != theirs:
            raise EchoicError(
                f"{out} holds embeddings from another model or settings "
                f"({found.get('model')!r}, timestamps={found.get('timestamps')}); expected "
                f"{meta['model']!r}, timestamps={meta['timestamps']}. Use another --out or delete it."
            )
        done.update(paths)
    return done, quarantined


def merge(out: Path, schema: pa.Schema) -> None:
    """Put ``out`` and the part files together into a new ``out``, one row group at a time.

    Row groups are copied byte for byte (nothing is decoded, memory stays at one copy block); a
    path seen twice (a run stopped between writing ``out`` and removing the parts) is kept once,
    and only a row group holding such a path, or written with another schema, is decoded and
    re-written, a few rows at a time.
    """
    found = sources(out)
    if found == [out]:
        return  # nothing new
    if len(found) == 1:  # a single part and no earlier output: it is the output
        os.replace(found[0], out)
        return
    tmp = tmp_name(out)
    seen: set[str] = set()
    try:
        with PagedParquetWriter(tmp, schema) as writer:
            for source in found:
                parquet = pq.ParquetFile(source)
                same_schema = parquet.schema_arrow.equals(schema, check_metadata=False)
                for index in range(parquet.metadata.num_row_groups):
                    paths = parquet.read_row_group(index, columns=["path"])["path"].to_pylist()
                    if same_schema and seen.isdisjoint(paths):
                        writer.copy_row_group(source, index)
                    else:
                        _rewrite_row_group(parquet, index, seen, schema, writer)
                    seen.update(paths)
        durable_replace(tmp, out)
    except OSError as err:
        if is_disk_full(err):
            kept = f"every row is kept in {parts_dir(out)} (and {out}, if it was there)"
            raise disk_full(err, out, kept) from err
        raise
    finally:
        tmp.unlink(missing_ok=True)


def _rewrite_row_group(
    parquet: pq.ParquetFile,
    index: int,
    seen: set[str],
    schema: pa.Schema,
    writer: PagedParquetWriter,
    batch_bytes: int = 64 << 20,
) -> None:
    """Write the rows of one row group whose path is not in ``seen``, cast to ``schema``, in
    batches of about ``batch_bytes``."""
    group = parquet.metadata.row_group(index)
    row_bytes = group.total_byte_size / max(group.num_rows, 1)
    batch_size = max(1, min(64, int(batch_bytes / max(row_bytes, 1.0))))
    for batch in parquet.iter_batches(batch_size=batch_size, row_groups=[index]):
        keep = [i for i, p in enumerate(batch.column("path").to_pylist()) if p not in seen]
        if len(keep) < batch.num_rows:
            batch = batch.take(pa.array(keep, pa.int64()))
        if batch.num_rows:
            writer.write(pa.Table.from_batches([batch]).cast(schema))
