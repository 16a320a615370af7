"""Batch extraction behind ``echoic embed``: files → Parquet rows, resumable, bad files skipped.

Rows are written in part files under ``<out>.parts/`` as they are finished, so an interrupted run
loses at most one flush; a re-run skips every path already in ``<out>`` or its parts and merges
everything into ``<out>`` at the end. Files that cannot be read are reported per file (the summary
and ``<out stem>.errors.csv``) and skipped; one bad file never stops the run.

Memory follows the largest file, not the run: rows are flushed once they hold ``flush_bytes``, and
files are written by :class:`~echoic.embed.paged_parquet.PagedParquetWriter`, which splits a long
row (an hour of timestamp embeddings) into ~1 MiB pages where pyarrow would build it as one page
several times its size; the final merge copies the parts' bytes without decoding them.

Files are mixed down to mono for mono models; a model taking ``C > 1`` channels (its ``channels``)
gets every channel (``load_audio(..., mono=False)``), and a file with another channel count is
reported and skipped.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from tqdm import tqdm

from echoic import __version__
from echoic.data.audio import audio_info, load_audio, require_min_samples
from echoic.data.discover import find_audio
from echoic.embed.base import ClipEmbedding, EmbeddingModel
from echoic.embed.paged_parquet import PagedParquetWriter
from echoic.errors import AudioError, EchoicError

_META_KEY = b"echoic"


@dataclass
class ExtractReport:
    """What a run did. ``errors``: (path, cause) per skipped file; ``converted``: counts of
    mixed-down / resampled inputs by kind."""

    out: Path
    written: int = 0
    already_done: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    converted: Counter[str] = field(default_factory=Counter)
    audio_s: float = 0.0
    wall_s: float = 0.0

    @property
    def errors_csv(self) -> Path:
        return errors_path(self.out)

    def summary(self) -> str:
        lines = [
            f"wrote {self.written} rows to {self.out} ({self.already_done} already there); "
            f"{len(self.errors)} file(s) skipped",
        ]
        if self.wall_s > 0:
            lines.append(
                f"{self.audio_s:.1f} s of audio in {self.wall_s:.1f} s "
                f"({self.audio_s / self.wall_s:.1f} audio-seconds per second)"
            )
        for kind, n in sorted(self.converted.items()):
            lines.append(f"converted: {n} file(s) {kind}")
        for path, cause in self.errors:
            lines.append(f"skipped {path}: {cause}")
        if self.errors:
            lines.append(f"errors listed in {self.errors_csv}")
        return "\n".join(lines)


def errors_path(out: Path) -> Path:
    return out.with_name(out.stem + ".errors.csv")


def _parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def _run_metadata(embedder: EmbeddingModel, timestamps: bool) -> dict[str, object]:
    return {
        "echoic_version": __version__,
        "model": embedder.label,
        "model_identity": embedder.identity,
        "timestamps": timestamps,
        "sample_rate": embedder.sample_rate,
    }


def _schema(dim: int, timestamps: bool, meta: dict[str, object]) -> pa.Schema:
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
    return pa.schema(fields, metadata={_META_KEY: json.dumps(meta, sort_keys=True)})


@dataclass
class _Row:
    """What one file's row holds: only the columns that are written (no native frames)."""

    path: str
    duration_s: float
    scene: np.ndarray  # (D,) float32
    timestamps_ms: np.ndarray | None = None  # (T,) float64
    timestamps: np.ndarray | None = None  # (T, D) float32, often a view of the model's frames

    @property
    def nbytes(self) -> int:
        arrays = (self.scene, self.timestamps_ms, self.timestamps)
        return sum(a.nbytes for a in arrays if a is not None)


def _row(path: str, duration_s: float, emb: ClipEmbedding, timestamps: bool) -> _Row:
    """The row of one file, sharing memory with ``emb`` (no copy of float32 CPU tensors)."""

    def array(tensor: torch.Tensor, dtype: type) -> np.ndarray:
        return np.ascontiguousarray(tensor.detach().cpu().numpy(), dtype=dtype)

    scene = array(emb.scene, np.float32)
    if not timestamps:
        return _Row(path, duration_s, scene)
    times = array(emb.timestamps_ms, np.float64)
    return _Row(path, duration_s, scene, times, array(emb.timestamps, np.float32))


def _table(rows: list[_Row], schema: pa.Schema) -> pa.Table:
    """The rows as a table without copying their timestamp arrays (one chunk per row)."""
    dim = schema.field("embedding").type.list_size
    scene = np.stack([r.scene for r in rows]).astype(np.float32, copy=False)
    cols: list[pa.Array | pa.ChunkedArray] = [
        pa.array([r.path for r in rows], pa.string()),
        pa.array([r.duration_s for r in rows], pa.float64()),
        pa.FixedSizeListArray.from_arrays(pa.array(scene.reshape(-1)), dim),
    ]
    if "timestamps_ms" in schema.names:
        times, embs = [], []
        for r in rows:
            assert r.timestamps_ms is not None and r.timestamps is not None
            offsets = pa.array(np.array([0, r.timestamps_ms.shape[0]], np.int32))
            times.append(pa.ListArray.from_arrays(offsets, pa.array(r.timestamps_ms)))
            inner = pa.FixedSizeListArray.from_arrays(pa.array(r.timestamps.reshape(-1)), dim)
            embs.append(pa.ListArray.from_arrays(offsets, inner))
        cols += [
            pa.chunked_array(times, schema.field("timestamps_ms").type),
            pa.chunked_array(embs, schema.field("timestamp_embeddings").type),
        ]
    return pa.Table.from_arrays(cols, schema=schema)


def _atomic_parquet(table: pa.Table, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    with PagedParquetWriter(tmp, table.schema) as writer:
        writer.write(table)
    os.replace(tmp, target)


def _sources(out: Path) -> list[Path]:
    """Finished output and part files, oldest first."""
    parts = sorted(_parts_dir(out).glob("part-*.parquet")) if _parts_dir(out).is_dir() else []
    return ([out] if out.is_file() else []) + parts


def _check_compatible(sources: Iterable[Path], meta: dict[str, object], out: Path) -> None:
    for source in sources:
        raw = (pq.read_schema(source).metadata or {}).get(_META_KEY)
        found = json.loads(raw) if raw else {}
        mine = {k: meta[k] for k in ("model_identity", "timestamps")}
        theirs = {k: found.get(k) for k in mine}
        if mine != theirs:
            raise EchoicError(
                f"{out} holds embeddings from another model or settings "
                f"({found.get('model')!r}, timestamps={found.get('timestamps')}); expected "
                f"{meta['model']!r}, timestamps={meta['timestamps']}. Use another --out or delete it."
            )


def extract(
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    embedder: EmbeddingModel,
    timestamps: bool = False,
    max_duration_s: float | None = None,
    files_per_batch: int = 16,
    flush_every: int = 64,
    progress: bool = True,
    flush_bytes: int = 64 << 20,
) -> ExtractReport:
    """Embed every audio file under ``paths`` into the Parquet file ``out`` (see module docstring).

    Finished rows are written to a part file every ``flush_every`` rows, or as soon as their
    arrays hold ``flush_bytes`` (a long file with timestamps is written right after it is embedded).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    report = ExtractReport(out=out)
    meta = _run_metadata(embedder, timestamps)
    schema = _schema(embedder.embedding_size, timestamps, meta)
    sources = _sources(out)
    _check_compatible(sources, meta, out)
    done = {p for src in sources for p in pq.read_table(src, columns=["path"])["path"].to_pylist()}
    files = [Path(p) for p in find_audio(paths)]
    todo = [f for f in files if str(f.resolve()) not in done]
    report.already_done = len(files) - len(todo)
    parts = _parts_dir(out)
    parts.mkdir(exist_ok=True)
    part_no = len(list(parts.glob("part-*.parquet")))
    pending: list[_Row] = []

    def flush() -> None:
        nonlocal part_no, pending
        if pending:
            _atomic_parquet(_table(pending, schema), parts / f"part-{part_no:06d}.parquet")
            part_no += 1
            report.written += len(pending)
            pending = []

    bar = tqdm(total=len(todo), desc="embed", unit="file", disable=not progress)
    groups = _load_groups(todo, embedder, report, max_duration_s, files_per_batch, bar)
    for group in groups:
        pending += _embed_rows(embedder, group, report, timestamps)
        group.clear()  # the loader still refers to the list: free the audio before writing
        if len(pending) >= flush_every or sum(r.nbytes for r in pending) >= flush_bytes:
            flush()
    bar.close()
    flush()
    _merge(out, schema)
    shutil.rmtree(parts, ignore_errors=True)
    _write_errors(report)
    report.wall_s = time.perf_counter() - start
    return report


def _load_groups(
    todo: list[Path],
    embedder: EmbeddingModel,
    report: ExtractReport,
    max_duration_s: float | None,
    files_per_batch: int,
    bar: tqdm,
    max_group_s: float = 600.0,
) -> Iterator[list[tuple[str, np.ndarray]]]:
    """Readable files as groups of ≤ ``files_per_batch`` files and ≤ ``max_group_s`` of audio
    (a longer file forms a group of its own); unreadable ones go to ``report.errors``."""
    group: list[tuple[str, np.ndarray]] = []
    group_samples = 0
    limit = max_group_s * embedder.sample_rate
    for path in todo:
        loaded = _load_one(path, embedder, report, max_duration_s)
        bar.update(1)
        bar.set_postfix(errors=len(report.errors))
        if loaded is None:
            continue
        samples = int(loaded[1].shape[-1])
        if group and (len(group) >= files_per_batch or group_samples + samples > limit):
            yield group
            group, group_samples = [], 0
        group.append(loaded)
        group_samples += samples
    loaded = None  # the last file's audio is the group's: held by the list alone
    if group:
        yield group


def model_channels(embedder: EmbeddingModel) -> int:
    """Audio channels the model takes: its ``channels`` (echoic's Embedder), else 1 (mono)."""
    return int(getattr(embedder, "channels", 1))


def _load_one(
    path: Path, embedder: EmbeddingModel, report: ExtractReport, max_duration_s: float | None
) -> tuple[str, np.ndarray] | None:
    """``(resolved path, (S,) or (C, S) audio)``, or None after reporting why it is skipped."""
    channels = model_channels(embedder)
    try:
        info = audio_info(path)
        wave, _ = load_audio(
            path,
            sample_rate=embedder.sample_rate,
            mono=channels == 1,
            max_duration_s=max_duration_s,
        )
        if channels > 1 and wave.shape[0] != channels:
            raise AudioError(
                str(path),
                f"{wave.shape[0]} channel(s), but the model takes {channels}",
                f"embed it with a model built for {wave.shape[0]} channel(s), or remix the file",
            )
        require_min_samples(wave, int(embedder.min_samples), path)
    except AudioError as err:
        report.errors.append((str(path), err.cause))
        return None
    except Exception as err:  # a decoder bug must not end the batch job
        report.errors.append((str(path), f"{type(err).__name__}: {err}"))
        return None
    if info.channels > 1 and channels == 1:
        report.converted[f"mixed from {info.channels} channels to mono"] += 1
    if info.sample_rate != embedder.sample_rate:
        report.converted[f"resampled {info.sample_rate} Hz → {embedder.sample_rate} Hz"] += 1
    return str(path.resolve()), wave


def _embed_rows(
    embedder: EmbeddingModel,
    group: list[tuple[str, np.ndarray]],
    report: ExtractReport,
    timestamps: bool,
) -> list[_Row]:
    """The rows of a group's embeddable files (the audio is not referenced once this returns)."""
    rows = []
    results = _embed_isolating(embedder, group, report)
    for (key, wave), emb in zip(group, results, strict=True):
        if emb is not None:
            duration = wave.shape[-1] / embedder.sample_rate
            report.audio_s += duration
            rows.append(_row(key, duration, emb, timestamps))
    return rows


def _embed_isolating(
    embedder: EmbeddingModel, loaded: list[tuple[str, np.ndarray]], report: ExtractReport
) -> list[ClipEmbedding | None]:
    """Embed a group; if the group fails, embed one by one so only the culprit is skipped."""
    if not loaded:
        return []
    try:
        return list(embedder.embed([w for _, w in loaded]))
    except Exception:
        results: list[ClipEmbedding | None] = []
        for key, wave in loaded:
            try:
                results.append(embedder.embed([wave])[0])
            except Exception as err:
                report.errors.append((key, f"embedding failed: {type(err).__name__}: {err}"))
                results.append(None)
        return results


def _merge(out: Path, schema: pa.Schema) -> None:
    """Put ``out`` and the part files together into a new ``out``, one row group at a time.

    Row groups are copied byte for byte (nothing is decoded, memory stays at one copy block); a
    path seen twice (a run stopped between writing ``out`` and removing the parts) is kept once,
    and only a row group holding such a path, or written with another schema, is decoded and
    re-written, a few rows at a time.
    """
    sources = _sources(out)
    if sources == [out]:
        return  # nothing new
    if len(sources) == 1:  # a single part and no earlier output: it is the output
        os.replace(sources[0], out)
        return
    tmp = out.with_name(f".{out.name}.tmp")
    seen: set[str] = set()
    with PagedParquetWriter(tmp, schema) as writer:
        for source in sources:
            parquet = pq.ParquetFile(source)
            same_schema = parquet.schema_arrow.equals(schema, check_metadata=False)
            for index in range(parquet.metadata.num_row_groups):
                paths = parquet.read_row_group(index, columns=["path"])["path"].to_pylist()
                if same_schema and seen.isdisjoint(paths):
                    writer.copy_row_group(source, index)
                else:
                    _rewrite_row_group(parquet, index, seen, schema, writer)
                seen.update(paths)
    os.replace(tmp, out)


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


def _write_errors(report: ExtractReport) -> None:
    target = report.errors_csv
    if not report.errors:
        target.unlink(missing_ok=True)
        return
    with target.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "error"])
        writer.writerows(report.errors)
