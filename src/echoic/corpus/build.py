"""``build_corpus``: run sources, write rendered audio atomically, record a hashed manifest.

Output folder::

    manifest.csv     file,source,duration_s,sample_rate,sha256,origin  (what ``echoic pretrain``
                     reads as ``--data.train '[DIR/manifest.csv]'``; ``file`` is relative to DIR
                     for rendered audio, absolute for files used in place)
    summary.json     per source: files, hours, licence; totals; the corpus content hash
    audio/<source>/<key>.flac   rendered audio (16-bit FLAC; mono, or multichannel for a
                     source that renders ``(C, S)`` audio such as ``binaural_scenes``)

Captioned sources add (audio-only builds write none of these, so their outputs are unchanged)::

    heldout.csv      the held-out caption set (manifest columns); never in manifest.csv
    captions.csv     file,source,split,group,caption,caption_lang,caption_kind (see
                     :mod:`echoic.data.captions`, which reads it)
    licences.csv     file,source,licence for sources that know each file's licence
    categories.csv   file,source,category (sfx / speech / music) for sources that know it

Sources with ``pcm_dedup`` are de-duplicated by decoded samples across the build: a file whose
samples equal a file kept earlier is skipped and counted in ``duplicates`` of its source.

Re-running skips rendered files already on disk; a failing item is reported and skipped.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from tqdm import tqdm

from echoic.corpus.base import SOURCES, CorpusContext, CorpusError, CorpusItem
from echoic.corpus.pcm import pcm_sha256
from echoic.data.audio import audio_info
from echoic.data.captions import CAPTION_COLUMNS, CAPTIONS, HELDOUT, in_heldout
from echoic.data.hashing import file_sha256

__all__ = ["MANIFEST", "CorpusSummary", "build_corpus", "file_sha256", "read_manifest"]

log = logging.getLogger(__name__)
MANIFEST = "manifest.csv"
SUMMARY = "summary.json"
LICENCES = "licences.csv"
COLUMNS = ("file", "source", "duration_s", "sample_rate", "sha256", "origin")
LICENCE_COLUMNS = ("file", "source", "licence")
CATEGORIES = "categories.csv"
CATEGORY_COLUMNS = ("file", "source", "category")
MAX_CHANNELS = 8  # FLAC's limit


@dataclass
class CorpusSummary:
    """What a build produced: per-source files/hours/licence, totals, content hash, failures."""

    directory: Path
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    total_files: int = 0
    total_hours: float = 0.0
    content_hash: str = ""
    failures: list[str] = field(default_factory=list)
    heldout_files: int = 0
    heldout_content_hash: str = ""
    captions: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sources": self.sources,
            "total_files": self.total_files,
            "total_hours": round(self.total_hours, 4),
            "content_hash": self.content_hash,
            "failures": self.failures,
        }
        if self.heldout_files or self.captions:
            out["heldout_files"] = self.heldout_files
            out["heldout_content_hash"] = self.heldout_content_hash
            out["captions"] = self.captions
        return out


def _flac_bytes(x: np.ndarray, sample_rate: int) -> bytes:
    """16-bit FLAC of ``(S,)`` mono or ``(C, S)`` channel-first float audio (C <= 8, FLAC's
    limit), scaled down by its peak if that exceeds 1."""
    x = np.asarray(x, dtype=np.float64)
    mono = x.ndim == 1
    shaped = mono or (x.ndim == 2 and 1 <= x.shape[0] <= MAX_CHANNELS)
    finite = bool(np.all(np.isfinite(x)))
    if not shaped or x.size == 0 or not finite:
        raise CorpusError(
            f"rendered audio: expected a non-empty, finite (S,) mono or (C, S) channel-first "
            f"array with C <= {MAX_CHANNELS}; found shape {x.shape}"
            + ("" if finite else " with non-finite samples")
        )
    peak = float(np.max(np.abs(x)))
    if peak > 1.0:
        x = x / peak
    pcm = np.round(x * 32767).astype("<i2")
    buf = io.BytesIO()
    sf.write(buf, pcm if mono else pcm.T, sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def _materialise(item: CorpusItem, source: str, out: Path) -> tuple[Path, str]:
    """The item's file on disk (rendered now unless present) and its manifest ``file`` entry."""
    if item.path is not None:
        return item.path, str(item.path.resolve())
    if item.render is None:
        raise CorpusError(f"{source}/{item.key}: an item needs a path or a render function")
    rel = Path("audio") / source / f"{item.key}.flac"
    target = out / rel
    if not target.is_file():
        audio, rate = item.render()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".partial")
        tmp.write_bytes(_flac_bytes(audio, rate))
        os.replace(tmp, target)
    return target, rel.as_posix()


def build_corpus(
    out: Path,
    sources: Sequence[str],
    ctx: CorpusContext,
    progress: bool = True,
    report: Callable[[str, dict[str, Any]], None] | None = None,
) -> CorpusSummary:
    """Build (or resume) the corpus of ``sources`` in ``out``; returns its summary."""
    out.mkdir(parents=True, exist_ok=True)
    summary = CorpusSummary(directory=out)
    rows: list[dict[str, Any]] = []
    heldout: list[dict[str, Any]] = []
    captions: list[dict[str, Any]] = []
    licences: list[dict[str, Any]] = []
    categories: list[dict[str, Any]] = []
    seen_pcm: set[str] = set()
    for name in sources:
        source = SOURCES.get(name)()
        missing = source.unavailable(ctx)
        if missing:
            raise CorpusError(f"corpus source {name!r} cannot run here: {missing}")
        seconds, files, held_files = 0.0, 0, 0
        kinds: dict[str, int] = {}
        by_category: dict[str, float] = {}
        duplicates = 0
        langs: dict[str, int] = {}
        cap = ctx.max_hours * 3600 if ctx.max_hours else None
        bar = tqdm(desc=name, unit="file", disable=not progress, leave=False)
        for item in source.items(ctx):
            if cap is not None and seconds >= cap:
                break
            try:
                path, entry = _materialise(item, name, out)
                info = audio_info(path)
                digest = file_sha256(path)
                pcm = pcm_sha256(path) if source.pcm_dedup else ""
            except Exception as exc:  # one bad item never stops the build
                summary.failures.append(f"{name}/{item.key}: {type(exc).__name__}: {exc}")
                log.warning("corpus %s: skipped %s (%s)", name, item.key, exc)
                continue
            finally:
                bar.update(1)
            if pcm:
                if pcm in seen_pcm:
                    duplicates += 1
                    continue
                seen_pcm.add(pcm)
            group = item.group or f"{name}/{item.key}"
            held = source.heldout_fraction > 0 and in_heldout(group, source.heldout_fraction)
            (heldout if held else rows).append(
                {
                    "file": entry,
                    "source": name,
                    "duration_s": f"{info.duration_s:.3f}",
                    "sample_rate": info.sample_rate,
                    "sha256": digest,
                    "origin": item.origin,
                }
            )
            split = "heldout" if held else "train"
            for c in item.captions:
                captions.append(
                    dict(
                        zip(
                            CAPTION_COLUMNS,
                            (entry, name, split, group, c.text, c.lang, c.kind),
                            strict=True,
                        )
                    )
                )
                kinds[c.kind] = kinds.get(c.kind, 0) + 1
                langs[c.lang] = langs.get(c.lang, 0) + 1
            if item.licence:
                licences.append({"file": entry, "source": name, "licence": item.licence})
            if item.category:
                categories.append({"file": entry, "source": name, "category": item.category})
                by_category[item.category] = by_category.get(item.category, 0.0) + info.duration_s
            seconds += info.duration_s
            files += 1
            held_files += held
        bar.close()
        stats: dict[str, Any] = {
            "files": files,
            "seconds": round(seconds, 3),
            "hours": round(seconds / 3600, 4),
            "licence": source.licence,
            "description": source.description,
        }
        if by_category:
            stats["category_hours"] = {
                k: round(v / 3600, 4) for k, v in sorted(by_category.items())
            }
        if source.pcm_dedup:
            stats["duplicates"] = duplicates
        if kinds:
            stats.update(heldout_files=held_files, captions=kinds, caption_langs=langs)
        summary.sources[name] = stats
        if report:
            report(name, stats)
    summary.total_files = len(rows)
    summary.total_hours = sum(float(r["duration_s"]) for r in rows) / 3600
    summary.content_hash = content_hash(r["sha256"] for r in rows)
    summary.heldout_files = len(heldout)
    summary.heldout_content_hash = content_hash(r["sha256"] for r in heldout) if heldout else ""
    summary.captions = len(captions)
    _write_manifest(out / MANIFEST, rows)
    for table, table_rows, columns in (
        (HELDOUT, heldout, COLUMNS),
        (CAPTIONS, captions, CAPTION_COLUMNS),
        (LICENCES, licences, LICENCE_COLUMNS),
        (CATEGORIES, categories, CATEGORY_COLUMNS),
    ):
        if table_rows:
            _write_manifest(out / table, table_rows, columns)
        elif (out / table).is_file():  # a rebuild without captioned sources: drop stale tables
            (out / table).unlink()
    tmp = out / (SUMMARY + ".partial")
    tmp.write_text(json.dumps(summary.to_json(), indent=1, sort_keys=True) + "\n")
    os.replace(tmp, out / SUMMARY)
    return summary


def content_hash(hashes: Any) -> str:
    """``sha256:<16 hex>`` of the sorted file hashes: the corpus's identity, order-independent."""
    digest = hashlib.sha256()
    for h in sorted(hashes):
        digest.update(f"{h}\n".encode())
    return f"sha256:{digest.hexdigest()[:16]}"


def _write_manifest(
    path: Path, rows: list[dict[str, Any]], columns: Sequence[str] = COLUMNS
) -> None:
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def read_manifest(path: Path) -> list[dict[str, str]]:
    """Rows of a corpus ``manifest.csv`` (a folder means its ``manifest.csv``)."""
    path = path / MANIFEST if path.is_dir() else path
    if not path.is_file():
        raise CorpusError(
            f"corpus manifest {path} not found; expected the manifest.csv that `echoic corpus "
            f"build --out DIR` writes"
        )
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if rows and not {"file", "sha256"} <= set(rows[0]):
        raise CorpusError(f"{path}: expected columns file and sha256; found {sorted(rows[0])}")
    return rows
