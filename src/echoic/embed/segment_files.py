"""Batch segmentation behind ``echoic segment``: audio files → syllable-like segments in Parquet.

Two methods:

* ``similarity`` (:class:`FrameSegmenter`): a model's native frames (its token→time map gives
  their times), segmented by Sylber's greedy pass (:mod:`echoic.embed.segment`); each segment's
  embedding is the mean of its frames and, with a fitted single-codebook tokenizer (k-means,
  ``echoic tokenizer fit``), its token is the tokenizer's id of that mean;
* ``energy`` (:class:`EnergySegmenter`): intensity-envelope syllable nuclei
  (:mod:`echoic.embed.nuclei`), no model; it reads audio at 16 kHz, mono.

One row per file (a file with no segment has empty lists, so a re-run knows it is done): ``path``,
``duration_s``, ``start_s`` and ``end_s`` (one entry per segment, seconds, in time order),
``embedding`` (``similarity``: one ``D``-vector per segment), ``token`` (with a tokenizer: one
int32 per segment), ``nucleus_s`` (``energy``: each syllable's nucleus). :func:`read_segments`
gives one row per segment instead.

The engine is ``echoic embed``'s (:func:`echoic.embed.extract.extract_rows`): part files, resume
(a re-run skips every file already written, and refuses output of another model, method or
setting), unreadable files (empty, corrupt, NaN, too short) reported per file in the summary and
``<out stem>.errors.csv`` and skipped, one failing file never stopping the run, Ctrl-C / SIGTERM
writing what is finished.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from echoic import __version__
from echoic.embed.base import ClipEmbedding, EmbeddingModel
from echoic.embed.extract import ExtractReport, Group, extract_rows, process_isolating
from echoic.embed.nuclei import NucleiConfig, syllable_nuclei
from echoic.embed.parts import META_KEY
from echoic.embed.segment import (
    SimilarityConfig,
    segment_means,
    segment_times,
    similarity_segments,
)
from echoic.errors import ConfigError
from echoic.tokenizers.base import Tokenizer

__all__ = [
    "EnergySegmenter",
    "FrameSegmenter",
    "SegmentReport",
    "SegmentRow",
    "read_segments",
    "segment_files",
]


@dataclass
class SegmentRow:
    """One file's segments: ``starts`` / ``ends`` ``(S,)`` seconds, and per segment an
    ``embeddings`` ``(S, D)`` float32, a ``tokens`` ``(S,)`` int32 and a ``nuclei`` ``(S,)``
    time, each None when the method gives none."""

    path: str
    duration_s: float
    starts: np.ndarray
    ends: np.ndarray
    embeddings: np.ndarray | None = None
    tokens: np.ndarray | None = None
    nuclei: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        arrays = (self.starts, self.ends, self.embeddings, self.tokens, self.nuclei)
        return sum(a.nbytes for a in arrays if a is not None)

    def __len__(self) -> int:
        return int(self.starts.shape[0])


def _settings(config: SimilarityConfig | NucleiConfig) -> str:
    """``key=value, ...`` of a config dataclass, for output labels and messages."""
    return ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(config).items())


class FrameSegmenter:
    """Sylber's greedy segmentation of ``model``'s frames, with optional segment tokens."""

    method = "similarity"

    def __init__(
        self,
        model: EmbeddingModel,
        config: SimilarityConfig | None = None,
        tokenizer: Tokenizer | None = None,
    ) -> None:
        self.model = model
        self.config = config or SimilarityConfig()
        self.tokenizer = tokenizer
        self.dim = int(model.embedding_size)
        if tokenizer is not None:
            if tokenizer.n_codebooks != 1:
                raise ConfigError(
                    f"segment tokens need a single-codebook tokenizer (such as kmeans); "
                    f"{tokenizer.name!r} has {tokenizer.n_codebooks} codebooks. Fit one with "
                    "`echoic tokenizer fit --tokenizer kmeans`."
                )
            if tokenizer.input_dim != self.dim:
                raise ConfigError(
                    f"the tokenizer reads {tokenizer.input_dim}-d vectors but {model.label!r} "
                    f"gives {self.dim}-d frames; use the model (and layer) it was fit on."
                )

    @property
    def loader(self) -> EmbeddingModel:
        return self.model

    @property
    def identity(self) -> str:
        settings = json.dumps(dataclasses.asdict(self.config), sort_keys=True)
        tokens = self.tokenizer.identity if self.tokenizer is not None else "none"
        return f"{self.model.identity}|similarity:{settings}|tokens:{tokens}"

    @property
    def label(self) -> str:
        return f"{self.model.label} [{self.method}: {_settings(self.config)}]" + (
            f" → tokens of {self.tokenizer.name}" if self.tokenizer is not None else ""
        )

    def segment(self, waves: Sequence[np.ndarray]) -> list[SegmentRow]:
        """Rows (path left empty) of clips at the model's rate, embedded as one batch."""
        embeddings = self.model.embed(list(waves))
        return [self._row(wave, emb) for wave, emb in zip(waves, embeddings, strict=True)]

    def _row(self, wave: np.ndarray, emb: ClipEmbedding) -> SegmentRow:
        frames = emb.frames.detach().float().cpu().numpy()
        if frames.ndim != 2 or frames.shape[1] != self.dim:
            raise ConfigError(
                f"{self.model.label!r} gave frames of shape {frames.shape}; expected (T, "
                f"{self.dim}) (its embedding_size)."
            )
        duration = wave.shape[-1] / self.model.sample_rate
        segments = similarity_segments(frames, self.config)
        times_s = emb.frame_times_ms.detach().cpu().numpy().astype(np.float64) / 1000.0
        starts, ends = segment_times(segments, times_s, duration)
        means = segment_means(frames, segments)
        tokens = None
        if self.tokenizer is not None:
            tokens = np.zeros(len(segments), dtype=np.int32)
            if len(segments):
                with torch.inference_mode():
                    ids = self.tokenizer(torch.from_numpy(means)[None], None)
                tokens = ids[0, :, 0].cpu().numpy().astype(np.int32)
        return SegmentRow("", duration, starts, ends, means, tokens)


class EnergySegmenter:
    """Intensity-envelope syllable nuclei (no model). As the batch engine's ``model`` it only
    says how to read audio (its rate, mono, the shortest clip it takes); it embeds nothing."""

    method = "energy"
    embedding_size = 0

    def __init__(self, config: NucleiConfig | None = None, sample_rate: int = 16000) -> None:
        self.config = config or NucleiConfig()
        self.sample_rate = int(sample_rate)

    @property
    def loader(self) -> EmbeddingModel:
        return self

    @property
    def label(self) -> str:
        return f"energy envelope, de Jong & Wempe style [{_settings(self.config)}]"

    @property
    def min_samples(self) -> int:
        return max(1, round(self.config.window_ms * self.sample_rate / 1000))

    @property
    def identity(self) -> str:
        settings = json.dumps(dataclasses.asdict(self.config), sort_keys=True)
        return f"energy:{settings}|sr:{self.sample_rate}"

    def embed(
        self, waveforms: Sequence[torch.Tensor | np.ndarray], sample_rate: int | None = None
    ) -> list[ClipEmbedding]:
        raise NotImplementedError("the energy baseline segments audio; it embeds nothing")

    def segment(self, waves: Sequence[np.ndarray]) -> list[SegmentRow]:
        rows = []
        for wave in waves:
            found = syllable_nuclei(
                np.asarray(wave, dtype=np.float32), self.sample_rate, self.config
            )
            duration = wave.shape[-1] / self.sample_rate
            rows.append(
                SegmentRow("", duration, found.starts_s, found.ends_s, nuclei=found.nuclei_s)
            )
        return rows


Segmenter = FrameSegmenter | EnergySegmenter


def segment_schema(segmenter: Segmenter, meta: dict[str, object]) -> pa.Schema:
    times = pa.list_(pa.float64())
    fields = [
        pa.field("path", pa.string()),
        pa.field("duration_s", pa.float64()),
        pa.field("start_s", times),
        pa.field("end_s", times),
    ]
    if isinstance(segmenter, FrameSegmenter):
        fields.append(pa.field("embedding", pa.list_(pa.list_(pa.float32(), segmenter.dim))))
        if segmenter.tokenizer is not None:
            fields.append(pa.field("token", pa.list_(pa.int32())))
    else:
        fields.append(pa.field("nucleus_s", times))
    return pa.schema(fields, metadata={META_KEY: json.dumps(meta, sort_keys=True)})


def _table(rows: list[SegmentRow], schema: pa.Schema) -> pa.Table:
    offsets = np.zeros(len(rows) + 1, np.int32)
    np.cumsum([len(r) for r in rows], out=offsets[1:])
    arrow_offsets = pa.array(offsets)

    def per_segment(values: list[np.ndarray | None], dtype: type, kind: pa.DataType) -> pa.Array:
        kept = [v for v in values if v is not None]
        flat: np.ndarray = np.concatenate(kept).astype(dtype) if kept else np.zeros(0, dtype)
        return pa.ListArray.from_arrays(arrow_offsets, pa.array(flat, kind))

    columns: list[pa.Array] = [
        pa.array([r.path for r in rows], pa.string()),
        pa.array([r.duration_s for r in rows], pa.float64()),
        per_segment([r.starts for r in rows], np.float64, pa.float64()),
        per_segment([r.ends for r in rows], np.float64, pa.float64()),
    ]
    if "embedding" in schema.names:
        dim = schema.field("embedding").type.value_type.list_size
        kept = [r.embeddings.reshape(-1) for r in rows if r.embeddings is not None]
        flat: np.ndarray = (
            np.concatenate(kept).astype(np.float32) if kept else np.zeros(0, np.float32)
        )
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(flat), dim)
        columns.append(pa.ListArray.from_arrays(arrow_offsets, vectors))
    if "token" in schema.names:
        columns.append(per_segment([r.tokens for r in rows], np.int32, pa.int32()))
    if "nucleus_s" in schema.names:
        columns.append(per_segment([r.nuclei for r in rows], np.float64, pa.float64()))
    return pa.Table.from_arrays(columns, schema=schema)


@dataclass
class SegmentReport:
    """``extract``: what the run did; ``files``, ``segments``, ``audio_s``: over every row of
    the output (earlier runs' rows too)."""

    extract: ExtractReport
    files: int
    segments: int
    audio_s: float

    @property
    def segments_per_second(self) -> float:
        return self.segments / self.audio_s if self.audio_s > 0 else 0.0

    def summary(self) -> str:
        return (
            f"{self.extract.summary()}\noverall: {self.files} file(s), {self.audio_s:.1f} s of "
            f"audio, {self.segments} segments, {self.segments_per_second:.2f} segments/s"
        )


def segment_files(
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    segmenter: Segmenter,
    max_duration_s: float | None = None,
    files_per_batch: int = 16,
    progress: bool = True,
) -> SegmentReport:
    """Segment every audio file under ``paths`` into the Parquet file ``out`` (module docstring)."""
    meta: dict[str, object] = {
        "echoic_version": __version__,
        "model": segmenter.label,
        "model_identity": segmenter.identity,
        "method": segmenter.method,
        "timestamps": False,
        "sample_rate": segmenter.loader.sample_rate,
        "config": dataclasses.asdict(segmenter.config),
    }
    schema = segment_schema(segmenter, meta)

    def rows_of(group: Group, report: ExtractReport) -> list[SegmentRow]:
        results = process_isolating(segmenter.segment, group, report, "segmenting")
        rows = []
        for (key, _), row in zip(group, results, strict=True):
            if row is not None:
                row.path = key
                report.audio_s += row.duration_s
                rows.append(row)
        return rows

    report = extract_rows(
        paths,
        out,
        segmenter.loader,
        meta,
        schema,
        rows_of,
        _table,
        max_duration_s=max_duration_s,
        files_per_batch=files_per_batch,
        progress=progress,
        desc="segment",
    )
    files, segments, seconds = 0, 0, 0.0
    if report.out.is_file():
        table = pq.read_table(report.out, columns=["duration_s", "start_s"])
        files = table.num_rows
        segments = int(pc.sum(pc.list_value_length(table["start_s"])).as_py() or 0)
        seconds = float(pc.sum(table["duration_s"]).as_py() or 0.0)
    return SegmentReport(report, files, segments, seconds)


def read_segments(path: str | os.PathLike[str]) -> pa.Table:
    """The output of :func:`segment_files` with one row per segment: ``path``, ``duration_s``,
    ``segment`` (its index in the file), then one value per segment of every list column."""
    table = pq.read_table(Path(path)).combine_chunks()
    starts = table["start_s"].combine_chunks()
    parents = pc.list_parent_indices(starts)
    counts = pc.list_value_length(starts).to_numpy(zero_copy_only=False)
    firsts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    parent = parents.to_numpy(zero_copy_only=False)
    columns: dict[str, Any] = {
        "path": pc.take(table["path"], parents),
        "duration_s": pc.take(table["duration_s"], parents),
        "segment": pa.array(np.arange(parent.size) - firsts[parent], pa.int64()),
    }
    for name in table.column_names:
        if name not in ("path", "duration_s"):
            columns[name] = pc.list_flatten(table[name].combine_chunks())
    return pa.table(columns)
