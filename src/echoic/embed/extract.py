"""Batch extraction behind ``echoic embed``: files → Parquet rows, resumable, bad files skipped.

Rows are written in part files under ``<out>.parts/`` as they are finished, so an interrupted run
loses at most one flush; a re-run skips every path already in ``<out>`` or its parts and merges
everything into ``<out>`` at the end. Files that cannot be read are reported per file (the summary
and ``<out stem>.errors.csv``) and skipped; one bad file never stops the run.

Memory follows the largest file, not the run: rows are flushed once they hold ``flush_bytes``, and
files are written by :class:`~echoic.embed.paged_parquet.PagedParquetWriter`, which splits a long
row (an hour of timestamp embeddings) into ~1 MiB pages where pyarrow would build it as one page
several times its size; the final merge copies the parts' bytes without decoding them.

Crash safety (the part files and their atomic writes: :mod:`echoic.embed.parts`): a crash never
leaves a half-written file, SIGTERM (through ``echoic embed``) and Ctrl-C write the rows already
embedded before stopping, and a damaged part is moved aside with a line in the summary, so its
files are embedded again. ``echoic embed --engine ray`` writes the same parts from Ray workers
(:mod:`echoic.embed.ray_extract`).

Files are mixed down to mono for mono models; a model taking ``C > 1`` channels (its ``channels``)
gets every channel (``load_audio(..., mono=False)``), and a file with another channel count is
reported and skipped.
"""

from __future__ import annotations

import csv
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from echoic.data.audio import audio_info, load_audio, require_min_samples
from echoic.data.discover import find_audio
from echoic.embed.base import ClipEmbedding, EmbeddingModel
from echoic.embed.embedder import Embedder
from echoic.embed.parts import (
    PartTable,
    Row,
    atomic_parquet,
    clean_stale_tmp,
    make_row,
    merge,
    next_part_number,
    parts_dir,
    rows_table,
    run_metadata,
    scan_done,
    schema_for,
)
from echoic.errors import AudioError


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
    quarantined: list[str] = field(default_factory=list)  # unreadable parts moved aside

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
        for part in self.quarantined:
            lines.append(f"moved aside an unreadable part (its files are embedded again): {part}")
        for path, cause in self.errors:
            lines.append(f"skipped {path}: {cause}")
        if self.errors:
            lines.append(f"errors listed in {self.errors_csv}")
        return "\n".join(lines)


def errors_path(out: Path) -> Path:
    return out.with_name(out.stem + ".errors.csv")


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
    meta = run_metadata(embedder, timestamps)
    return extract_rows(
        paths,
        out,
        embedder,
        meta,
        schema_for(embedder.embedding_size, timestamps, meta),
        lambda group, report: _embed_rows(embedder, group, report, timestamps),
        rows_table,
        max_duration_s=max_duration_s,
        files_per_batch=files_per_batch,
        flush_every=flush_every,
        progress=progress,
        flush_bytes=flush_bytes,
    )


class SizedRow(Protocol):
    """A finished row of any output kind: it knows the bytes its arrays hold."""

    @property
    def nbytes(self) -> int: ...


RowT = TypeVar("RowT", bound=SizedRow)
Group = list[tuple[str, np.ndarray]]
"""Loaded files: (resolved path, ``(S,)`` or ``(C, S)`` audio at the model's rate)."""


def extract_rows(
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    model: EmbeddingModel,
    meta: dict[str, object],
    schema: pa.Schema,
    rows_of: Callable[[Group, ExtractReport], list[RowT]],
    table_of: Callable[[list[RowT], pa.Schema], pa.Table | PartTable],
    max_duration_s: float | None = None,
    files_per_batch: int = 16,
    flush_every: int = 64,
    progress: bool = True,
    flush_bytes: int = 64 << 20,
    desc: str = "embed",
) -> ExtractReport:
    """The engine of :func:`extract` for rows of any kind (``echoic tokenize`` writes token rows
    with it): files are found, loaded for ``model`` (its rate, channels, ``min_samples``) and
    grouped; ``rows_of(group, report)`` turns a group into rows (reporting the files it skips),
    ``table_of(rows, schema)`` into a table written as a part. Resume, part files, the merge,
    the errors CSV and Ctrl-C / SIGTERM handling are :func:`extract`'s; ``meta`` (with
    ``model_identity`` and ``timestamps`` keys, see :func:`~echoic.embed.parts.scan_done`) says
    which earlier output a re-run may go on from.
    """
    start = time.perf_counter()
    report = ExtractReport(out=Path(out))
    todo = _prepare_files(paths, report.out, meta, report)
    parts = parts_dir(report.out)
    part_no = next_part_number(parts)
    pending: list[RowT] = []

    def flush() -> None:
        nonlocal part_no, pending
        if pending:
            part = parts / f"part-{part_no:06d}.parquet"
            atomic_parquet(table_of(pending, schema), part, schema)
            part_no += 1
            report.written += len(pending)
            pending = []

    bar = tqdm(total=len(todo), desc=desc, unit="file", disable=not progress)
    groups = _load_groups(todo, model, report, max_duration_s, files_per_batch, bar)
    try:
        for group in groups:
            pending += rows_of(group, report)
            group.clear()  # the loader still refers to the list: free the audio before writing
            if len(pending) >= flush_every or sum(r.nbytes for r in pending) >= flush_bytes:
                flush()
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C, or SIGTERM through echoic embed
        flush()  # keep what is embedded: a re-run starts after it
        raise
    bar.close()
    flush()
    _finish_run(report, schema)
    report.wall_s = time.perf_counter() - start
    return report


def _prepare_run(
    paths: Sequence[str | os.PathLike[str]],
    out: Path,
    embedder: EmbeddingModel,
    timestamps: bool,
    report: ExtractReport,
) -> tuple[pa.Schema, list[Path]]:
    """The output schema and the files still to embed (``report.already_done`` set); checks
    that earlier output came from the same model and settings and creates ``<out>.parts/``."""
    meta = run_metadata(embedder, timestamps)
    schema = schema_for(embedder.embedding_size, timestamps, meta)
    return schema, _prepare_files(paths, out, meta, report)


def _prepare_files(
    paths: Sequence[str | os.PathLike[str]],
    out: Path,
    meta: dict[str, object],
    report: ExtractReport,
) -> list[Path]:
    """The files still to process (``report.already_done`` set); checks that earlier output came
    from the same ``meta`` and creates ``<out>.parts/``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_tmp(out)
    done, report.quarantined = scan_done(out, meta)
    files = [Path(p) for p in find_audio(paths)]
    todo = [f for f in files if str(f.resolve()) not in done]
    report.already_done = len(files) - len(todo)
    parts_dir(out).mkdir(exist_ok=True)
    return todo


def _finish_run(report: ExtractReport, schema: pa.Schema) -> None:
    """Merge the parts into ``report.out``, remove them, write the errors CSV."""
    merge(report.out, schema)
    shutil.rmtree(parts_dir(report.out), ignore_errors=True)
    _write_errors(report)


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
) -> list[Row]:
    """The rows of a group's embeddable files (the audio is not referenced once this returns)."""
    rows = []
    results = _embed_isolating(embedder, group, report, lazy_timestamps=timestamps)
    for (key, wave), emb in zip(group, results, strict=True):
        if emb is not None:
            duration = wave.shape[-1] / embedder.sample_rate
            report.audio_s += duration
            rows.append(make_row(key, duration, emb, timestamps))
    return rows


def _embed_isolating(
    embedder: EmbeddingModel,
    loaded: list[tuple[str, np.ndarray]],
    report: ExtractReport,
    lazy_timestamps: bool = False,
) -> list[ClipEmbedding | None]:
    """Embed a group; if the group fails, embed one by one so only the culprit is skipped.
    ``lazy_timestamps``: an echoic Embedder keeps timestamp rows as the frames they interpolate
    (written page by page: a long file's are never held whole)."""
    if lazy_timestamps and isinstance(embedder, Embedder):
        embed = embedder

        def lazily(waves: Sequence[np.ndarray]) -> list[ClipEmbedding]:
            return embed.embed(waves, lazy_timestamps=True)

        return process_isolating(lazily, loaded, report, "embedding")
    return process_isolating(embedder.embed, loaded, report, "embedding")


ResultT = TypeVar("ResultT")


def process_isolating(
    process: Callable[[list[np.ndarray]], Sequence[ResultT]],
    loaded: Group,
    report: ExtractReport,
    what: str,
) -> list[ResultT | None]:
    """``process`` a group's audio in one call; if that fails, file by file, so only the culprit
    is skipped (None, with "``what`` failed: ..." in ``report.errors``)."""
    if not loaded:
        return []
    try:
        return list(process([w for _, w in loaded]))
    except Exception:
        results: list[ResultT | None] = []
        for key, wave in loaded:
            try:
                results.append(process([wave])[0])
            except Exception as err:
                report.errors.append((key, f"{what} failed: {type(err).__name__}: {err}"))
                results.append(None)
        return results


def _write_errors(report: ExtractReport) -> None:
    target = report.errors_csv
    if not report.errors:
        target.unlink(missing_ok=True)
        return
    with target.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "error"])
        writer.writerows(report.errors)
