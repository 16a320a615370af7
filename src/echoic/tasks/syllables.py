"""Syllable event tasks: reference syllable boundaries of real speech by forced alignment.

A :class:`SyllableTask` plans its clips from the data set's metadata (cheap), then
:meth:`SyllableTask.annotate` aligns each source file with pocketsphinx (:mod:`echoic.tasks.align`)
and turns the syllables of the aligned phones (:mod:`echoic.tasks.syllabify`) into events labelled
``syl`` with start/end in ms. The task folder also holds ``alignments.jsonl``, one line per source:
transcript (and whether it was known or decoded), aligned words with their phones, syllables with
their phones and times. That file doubles as the cache: a rebuild (or a build resumed after an
interruption; it is saved every :data:`SAVE_EVERY` clips) aligns only the sources not in it, and a
complete one needs no pocketsphinx at all.

Events are cut to the task's ``sample_duration``: syllables that end after it are left out (the
crop is the same for every output rate); builders with :attr:`SyllableTask.whole_clips_only` drop a
clip instead when any of its syllables would be cut. A clip without any aligned syllable (the
aligner found no path, or decoding found no word) is left out and counted in :attr:`stats`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from echoic.data.audio import load_audio
from echoic.tasks.align import (
    SAMPLE_RATE,
    Aligner,
    Phone,
    Word,
    pocketsphinx_version,
    syllables,
)
from echoic.tasks.base import Clip, Event, TaskBuilder
from echoic.tasks.writer import atomic_write_bytes

PIPELINE_VERSION = 1
"""Bump when alignment or syllabification changes: cached alignments of another version are redone."""
ALIGNMENTS_FILE = "alignments.jsonl"
SAVE_EVERY = 50
LABEL = "syl"


@dataclass
class AnnotationStats:
    """What the last :meth:`SyllableTask.annotate` did."""

    planned: int = 0
    aligned: int = 0  # clips aligned in this call (the rest came from the cache)
    kept: int = 0
    no_syllables: int = 0  # left out: the aligner found no path / the decoder no word
    cut: int = 0  # whole_clips_only tasks: left out because a syllable ended past the clip
    syllables: int = 0  # events written
    align_seconds: float = 0.0
    audio_seconds: float = 0.0  # audio aligned in this call


def syllable_records(words: list[Word]) -> list[dict[str, Any]]:
    return [
        {"phones": s.phones, "word": s.word, "start": s.start_ms, "end": s.end_ms}
        for s in syllables(words)
    ]


def record(
    clip: Clip, transcript: str, known: bool, words: list[Word], aligner: str
) -> dict[str, Any]:
    """One ``alignments.jsonl`` line (times in ms)."""
    return {
        "source": clip.sources[0],
        "file": clip.name,
        "split": clip.split,
        "transcript": transcript,
        "transcript_from": "known" if known else "decoded",
        "aligner": aligner,
        "version": PIPELINE_VERSION,
        "words": [
            {"word": w.text, "phones": [[p.label, p.start_ms, p.end_ms] for p in w.phones]}
            for w in words
        ],
        "syllables": syllable_records(words),
    }


def record_words(entry: dict[str, Any]) -> list[Word]:
    return [
        Word(w["word"], tuple(Phone(str(p[0]), int(p[1]), int(p[2])) for p in w["phones"]))
        for w in entry["words"]
    ]


def read_alignments(path: Path) -> dict[str, dict[str, Any]]:
    """``alignments.jsonl`` → source → record (records of another pipeline version left out)."""
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            entry = json.loads(line)
            if entry.get("version") == PIPELINE_VERSION:
                out[entry["source"]] = entry
    return out


def alignments_bytes(entries: dict[str, dict[str, Any]]) -> bytes:
    lines = [json.dumps(entries[k], sort_keys=True, ensure_ascii=False) for k in sorted(entries)]
    return ("\n".join(lines) + "\n").encode() if lines else b""


class SyllableTask(TaskBuilder):
    """An event task whose events are forced-aligned syllables. Subclasses set :attr:`info`,
    :attr:`datasets`, implement :meth:`plan` and, for known words, :meth:`transcript`."""

    whole_clips_only = False

    def __init__(self) -> None:
        self.stats = AnnotationStats()

    def transcript(self, clip: Clip) -> str | None:
        """The clip's known transcript, or None to decode one with pocketsphinx's language model."""
        return None

    def vocabulary(self, clips: Sequence[Clip]) -> list[str]:
        return [LABEL]

    def _align(
        self, clips: Sequence[Clip], data_dir: Path, cache_path: Path, cached: dict[str, Any]
    ) -> None:
        import time

        todo = [c for c in clips if not self._valid(cached.get(c.sources[0]), c)]
        if not todo:
            return
        aligner, version = Aligner(), f"pocketsphinx {pocketsphinx_version()}"
        start = time.perf_counter()
        bar = tqdm(todo, desc=f"{self.info.name} align", unit="clip", disable=None, leave=False)
        for i, clip in enumerate(bar, 1):
            audio, _ = load_audio(data_dir / clip.sources[0], sample_rate=SAMPLE_RATE)
            self.stats.audio_seconds += audio.shape[0] / SAMPLE_RATE
            known = self.transcript(clip)
            if known is None:
                text, words = aligner.transcribe_and_align(audio)
            else:
                text, words = known, aligner.align(audio, known)
            cached[clip.sources[0]] = record(clip, text, known is not None, words, version)
            self.stats.aligned += 1
            if i % SAVE_EVERY == 0:
                atomic_write_bytes(cache_path, alignments_bytes(cached))
        bar.close()
        self.stats.align_seconds = time.perf_counter() - start

    def _valid(self, entry: dict[str, Any] | None, clip: Clip) -> bool:
        if entry is None:
            return False
        known = self.transcript(clip)
        if known is None:
            return bool(entry["transcript_from"] == "decoded")
        return bool(entry["transcript_from"] == "known" and entry["transcript"] == known)

    def annotate(self, clips: Sequence[Clip], data_dir: Path, task_dir: Path) -> list[Clip]:
        """Align every clip (or take it from ``alignments.jsonl``) and set its syllable events."""
        self.stats = AnnotationStats(planned=len(clips))
        cache_path = task_dir / ALIGNMENTS_FILE
        cached = read_alignments(cache_path)
        self._align(clips, data_dir, cache_path, cached)
        limit_ms = self.info.sample_duration * 1000.0
        out = []
        for clip in clips:
            entry = cached[clip.sources[0]]
            words = record_words(entry)
            entry["syllables"] = syllable_records(words)  # the cache holds alignments; re-syllabify
            found = syllables(words)
            events = tuple(
                Event(LABEL, s.start_ms, s.end_ms) for s in found if s.end_ms <= limit_ms
            )
            if not events:
                self.stats.no_syllables += 1
                continue
            if self.whole_clips_only and len(events) < len(found):
                self.stats.cut += 1
                continue
            out.append(replace(clip, events=events))
            self.stats.syllables += len(events)
        self.stats.kept = len(out)
        keep = {c.sources[0] for c in clips}
        task_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(cache_path, alignments_bytes({k: cached[k] for k in keep}))
        return out
