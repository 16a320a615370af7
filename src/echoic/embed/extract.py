"""Batch extraction behind ``echoic embed``: files → Parquet rows, resumable, bad files skipped.

Rows are written in part files under ``<out>.parts/`` as they are finished, so an interrupted run
loses at most one flush; a re-run skips every path already in ``<out>`` or its parts and merges
everything into ``<out>`` at the end. Files that cannot be read are reported per file (the summary
and ``<out stem>.errors.csv``) and skipped; one bad file never stops the run.

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
from tqdm import tqdm

from echoic import __version__
from echoic.data.audio import audio_info, load_audio, require_min_samples
from echoic.data.discover import find_audio
from echoic.embed.base import ClipEmbedding, EmbeddingModel
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


def _table(rows: list[tuple[str, float, ClipEmbedding]], schema: pa.Schema) -> pa.Table:
    dim = schema.field("embedding").type.list_size
    scene = np.stack([r[2].scene.numpy() for r in rows]).astype(np.float32)
    cols: dict[str, pa.Array] = {
        "path": pa.array([r[0] for r in rows], pa.string()),
        "duration_s": pa.array([r[1] for r in rows], pa.float64()),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(scene.reshape(-1)), dim),
    }
    if "timestamps_ms" in schema.names:
        counts = np.array([0] + [r[2].timestamps_ms.shape[0] for r in rows])
        offsets = pa.array(np.cumsum(counts).astype(np.int32))
        times = np.concatenate([r[2].timestamps_ms.numpy() for r in rows])
        embs = np.concatenate([r[2].timestamps.numpy() for r in rows]).astype(np.float32)
        cols["timestamps_ms"] = pa.ListArray.from_arrays(offsets, pa.array(times))
        inner = pa.FixedSizeListArray.from_arrays(pa.array(embs.reshape(-1)), dim)
        cols["timestamp_embeddings"] = pa.ListArray.from_arrays(offsets, inner)
    return pa.table(cols, schema=schema)


_WRITE_OPTIONS = {"use_dictionary": ["path"], "compression": "zstd"}


def _atomic_parquet(table: pa.Table, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    pq.write_table(table, tmp, **_WRITE_OPTIONS)
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
) -> ExtractReport:
    """Embed every audio file under ``paths`` into the Parquet file ``out`` (see module docstring)."""
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
    pending: list[tuple[str, float, ClipEmbedding]] = []

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
        results = _embed_isolating(embedder, group, report)
        for (key, wave), emb in zip(group, results, strict=True):
            if emb is not None:
                duration = wave.shape[-1] / embedder.sample_rate
                report.audio_s += duration
                pending.append((key, duration, emb))
        del group, results  # free the audio before the next group is loaded
        if len(pending) >= flush_every:
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
    """Stream ``out`` and the part files into a new ``out``, one record batch at a time.

    Memory stays at one batch whatever the output's size; a path seen twice (a run stopped
    between writing ``out`` and removing the parts) is kept once.
    """
    sources = _sources(out)
    if sources == [out]:
        return  # nothing new
    if len(sources) == 1:  # a single part and no earlier output: it is the output
        os.replace(sources[0], out)
        return
    tmp = out.with_name(f".{out.name}.tmp")
    seen: set[str] = set()
    with pq.ParquetWriter(tmp, schema, **_WRITE_OPTIONS) as writer:
        for source in sources:
            for batch in pq.ParquetFile(source).iter_batches(batch_size=64):
                paths = batch.column("path").to_pylist()
                keep = [i for i, p in enumerate(paths) if p not in seen]
                seen.update(paths)
                if len(keep) < len(paths):
                    batch = batch.take(pa.array(keep, pa.int64()))
                if batch.num_rows:
                    writer.write_table(pa.Table.from_batches([batch]).cast(schema))
    os.replace(tmp, out)


def _write_errors(report: ExtractReport) -> None:
    target = report.errors_csv
    if not report.errors:
        target.unlink(missing_ok=True)
        return
    with target.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "error"])
        writer.writerows(report.errors)
