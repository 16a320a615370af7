"""Batch tokenizing behind ``echoic tokenize``: audio files → token sequences in Parquet.

The same engine as ``echoic embed`` (:func:`echoic.embed.extract.extract_rows`): part files,
resume (a re-run skips every file already written, and refuses output of another model,
tokenizer or setting), unreadable files reported and skipped, one failing file never stopping
the run, Ctrl-C / SIGTERM writing what is finished.

One row per file: ``path``, ``duration_s``, ``tokenizer`` (its identity), ``frame_hop_ms``,
``first_frame_ms`` (centre of frame 0), ``n_frames`` (before dedup), ``ids`` (one entry per
kept frame, each the ``n_codebooks`` int32 ids of that frame: codebook ``c`` of the clip is
``[frame[c] for frame in ids]``) and, with ``--dedup``, ``run_lengths``: consecutive frames whose
ids agree in every codebook are collapsed into one, and ``run_lengths[j]`` says how many frames
entry ``j`` stands for (frame ``k`` is centred at ``first_frame_ms + k * frame_hop_ms``).

Rates: ``tokens/s`` counts ids (every codebook) per second of audio, ``bits/s`` the bits of
those ids (``sum(log2 K_c)`` per kept frame; run lengths not counted).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from echoic import __version__
from echoic.embed.extract import ExtractReport, Group, extract_rows, process_isolating
from echoic.embed.parts import META_KEY
from echoic.embed.token_frames import FrameSource
from echoic.tokenizers.base import Tokenizer

__all__ = [
    "TokenRow",
    "TokenizeReport",
    "dedup_runs",
    "rate_rows",
    "tokenize_clips",
    "tokenize_files",
]


@dataclass
class TokenRow:
    """One file's tokens: ``ids`` ``(n_codebooks, T')`` int32, ``run_lengths`` ``(T',)`` or None."""

    path: str
    duration_s: float
    n_frames: int
    first_frame_ms: float
    ids: np.ndarray
    run_lengths: np.ndarray | None

    @property
    def nbytes(self) -> int:
        return int(
            self.ids.nbytes + (self.run_lengths.nbytes if self.run_lengths is not None else 0)
        )


def dedup_runs(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run-length collapse of ``ids`` ``(n_codebooks, T)``: ``(n_codebooks, T')`` ids of the
    runs of identical columns and ``(T',)`` int32 run lengths (summing to ``T``)."""
    if ids.shape[1] == 0:
        return ids, np.zeros(0, np.int32)
    change = np.ones(ids.shape[1], dtype=bool)
    change[1:] = (ids[:, 1:] != ids[:, :-1]).any(0)
    starts = np.flatnonzero(change)
    lengths = np.diff(np.append(starts, ids.shape[1])).astype(np.int32)
    return ids[:, starts], lengths


def tokenize_clips(
    source: FrameSource, tokenizer: Tokenizer, waves: Sequence[np.ndarray]
) -> list[tuple[np.ndarray, float]]:
    """``(n_codebooks, T)`` int32 ids and the centre of frame 0 (ms) of each clip, the clips'
    frames padded into one batch for the tokenizer."""
    clips = source.frames(waves)
    if not clips:
        return []
    lengths = [c.inputs.shape[0] for c in clips]
    batch = torch.nn.utils.rnn.pad_sequence([c.inputs for c in clips], batch_first=True)
    padding = torch.arange(batch.shape[1])[None, :] >= torch.tensor(lengths)[:, None]
    ids = tokenizer(batch, padding).cpu().numpy().astype(np.int32)
    return [
        (np.ascontiguousarray(ids[i, :n].T), c.first_ms)
        for i, (n, c) in enumerate(zip(lengths, clips, strict=True))
    ]


def token_schema(n_codebooks: int, dedup: bool, meta: dict[str, object]) -> pa.Schema:
    fields = [
        pa.field("path", pa.string()),
        pa.field("duration_s", pa.float64()),
        pa.field("tokenizer", pa.string()),
        pa.field("frame_hop_ms", pa.float64()),
        pa.field("first_frame_ms", pa.float64()),
        pa.field("n_frames", pa.int64()),
        pa.field("ids", pa.list_(pa.list_(pa.int32(), n_codebooks))),
    ]
    if dedup:
        fields.append(pa.field("run_lengths", pa.list_(pa.int32())))
    return pa.schema(fields, metadata={META_KEY: json.dumps(meta, sort_keys=True)})


def _table(rows: list[TokenRow], schema: pa.Schema, tokenizer: str, hop_ms: float) -> pa.Table:
    """The rows as a table; ``ids`` of a row are its frames, each ``n_codebooks`` ids."""
    n = len(rows)
    n_codebooks = schema.field("ids").type.value_type.list_size
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum([r.ids.shape[1] for r in rows], out=offsets[1:])
    flat = np.concatenate([r.ids.T.reshape(-1) for r in rows]).astype(np.int32, copy=False)
    frames = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.int32()), n_codebooks)
    columns: list[pa.Array] = [
        pa.array([r.path for r in rows], pa.string()),
        pa.array([r.duration_s for r in rows], pa.float64()),
        pa.array([tokenizer] * n, pa.string()),
        pa.array([hop_ms] * n, pa.float64()),
        pa.array([r.first_frame_ms for r in rows], pa.float64()),
        pa.array([r.n_frames for r in rows], pa.int64()),
        pa.ListArray.from_arrays(pa.array(offsets), frames),
    ]
    if "run_lengths" in schema.names:
        runs = [r.run_lengths if r.run_lengths is not None else np.zeros(0, np.int32) for r in rows]
        columns.append(
            pa.ListArray.from_arrays(
                pa.array(offsets), pa.array(np.concatenate(runs).astype(np.int32), pa.int32())
            )
        )
    return pa.Table.from_arrays(columns, schema=schema)


@dataclass
class TokenizeReport:
    """``extract``: what the run did (files written, skipped, errors); ``rates``: per file
    ``(path, duration_s, tokens, tokens/s, bits/s)`` over every row of the output."""

    extract: ExtractReport
    rates: list[tuple[str, float, int, float, float]]

    @property
    def rates_csv(self) -> Path:
        out = self.extract.out
        return out.with_name(out.stem + ".rates.csv")

    def overall(self) -> tuple[float, float, float]:
        """(audio seconds, tokens/s, bits/s) over every file."""
        seconds = sum(r[1] for r in self.rates)
        tokens = sum(r[2] for r in self.rates)
        bits = sum(r[4] * r[1] for r in self.rates)
        return seconds, tokens / max(seconds, 1e-12), bits / max(seconds, 1e-12)

    def summary(self, per_file_lines: int = 20) -> str:
        lines = [self.extract.summary()]
        seconds, tps, bps = self.overall()
        if len(self.rates) <= per_file_lines:
            lines += [
                f"  {Path(p).name}: {t:.2f} tokens/s, {b:.1f} bits/s"
                for p, _, _, t, b in self.rates
            ]
        lines.append(
            f"overall: {len(self.rates)} file(s), {seconds:.1f} s of audio, {tps:.2f} tokens/s, "
            f"{bps:.1f} bits/s (per file: {self.rates_csv})"
        )
        return "\n".join(lines)


def rate_rows(
    out: Path, bits_per_id: Sequence[float]
) -> list[tuple[str, float, int, float, float]]:
    """``(path, duration_s, tokens, tokens/s, bits/s)`` of every row of a tokens Parquet file."""
    import pyarrow.compute as pc

    table = pq.read_table(out, columns=["path", "duration_s", "ids"])
    kept = pc.list_value_length(table["ids"]).to_numpy(zero_copy_only=False)
    rows = []
    for path, duration, n in zip(
        table["path"].to_pylist(), table["duration_s"].to_pylist(), kept.tolist(), strict=True
    ):
        seconds = max(float(duration), 1e-12)
        tokens = int(n) * len(bits_per_id)
        rows.append((path, duration, tokens, tokens / seconds, n * sum(bits_per_id) / seconds))
    return rows


def tokenize_files(
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    source: FrameSource,
    tokenizer: Tokenizer,
    dedup: bool = False,
    max_duration_s: float | None = None,
    files_per_batch: int = 16,
    progress: bool = True,
) -> TokenizeReport:
    """Tokenize every audio file under ``paths`` into the Parquet file ``out`` (module docstring)."""
    meta: dict[str, object] = {
        "echoic_version": __version__,
        "model": f"{source.embedder.label} ({source.input}, layer {source.layer}) → {tokenizer.name}",
        "model_identity": f"{source.identity}|{tokenizer.identity}|dedup={dedup}",
        "timestamps": False,
        "sample_rate": source.sample_rate,
        "tokenizer": tokenizer.sidecar(),
    }
    schema = token_schema(tokenizer.n_codebooks, dedup, meta)
    identity = tokenizer.identity

    def rows_of(group: Group, report: ExtractReport) -> list[TokenRow]:
        results = process_isolating(
            lambda waves: tokenize_clips(source, tokenizer, waves), group, report, "tokenizing"
        )
        rows = []
        for (key, wave), result in zip(group, results, strict=True):
            if result is None:
                continue
            ids, first_ms = result
            duration = wave.shape[-1] / source.sample_rate
            report.audio_s += duration
            n_frames = ids.shape[1]
            runs = None
            if dedup:
                ids, runs = dedup_runs(ids)
            rows.append(TokenRow(key, duration, n_frames, first_ms, ids, runs))
        return rows

    report = extract_rows(
        paths,
        out,
        source.embedder,
        meta,
        schema,
        rows_of,
        lambda rows, schema: _table(rows, schema, identity, source.hop_ms),
        max_duration_s=max_duration_s,
        files_per_batch=files_per_batch,
        progress=progress,
        desc="tokenize",
    )
    bits = [float(np.log2(k)) for k in tokenizer.codebook_sizes]
    rates = rate_rows(report.out, bits) if report.out.is_file() else []
    result = TokenizeReport(report, rates)
    with result.rates_csv.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "duration_s", "tokens", "tokens_per_s", "bits_per_s"])
        writer.writerows(rates)
    return result
