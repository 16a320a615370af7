"""``esc50_scenes``: sound event detection in 10-s scenes mixed from ESC-50 clips.

Synthesis (see :mod:`echoic.tasks.scenes` for the envelope rule and why not scaper):

* Sources: event clips of :data:`EVENT_CLASSES` and background clips of :data:`BACKGROUND_CLASSES`
  (stationary ambiences; only clips active in >= 95 % of their 10 ms frames and with no frame
  below -70 dBFS, i.e. no digital-silence padding). A scene of fold ``k`` uses only ESC-50 clips of
  official fold ``k``, so no source clip (or freesound recording) is in two folds.
* Background: two different clips of one background class, the second starting at 4.96 s, each
  with 40 ms linear fades (a crossfade at the joint), scaled to -40 dBFS RMS.
* Events: 2-4 per scene, drawn in turn from the fold's event clips (shuffled, reshuffled when used
  up, so a clip can recur within its fold). Each event is its clip's active region (energy
  envelope), cut to at most :data:`MAX_EVENT_S` seconds, with 5 ms fades, scaled so that the
  RMS of the whole active region would be U(-34, -22) dBFS (6-18 dB above the background). Events do not overlap: they keep their draw
  order and at least 0.25 s between them (and from the scene edges), with the spare time split at
  random. An event is dropped from the end of a scene's draw when the scene cannot hold it.
* Labels: ``start``/``end`` of each event in ms = its placement in the scene; the envelope is
  measured at the source rate (16 kHz), so labels are the same for every output rate.
* Seeds: one ``numpy`` generator per fold (seed ``SEED + fold``); small mode keeps the first
  scenes of each fold, which are identical to the first scenes of the full build.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from echoic.data.audio import load_audio
from echoic.tasks import scenes
from echoic.tasks.base import (
    TASKS,
    Clip,
    Event,
    TaskBuilder,
    TaskInfo,
    fold_name,
    n_samples,
    read_meta,
)

EVENT_CLASSES = (
    "can_opening",
    "car_horn",
    "cat",
    "coughing",
    "cow",
    "dog",
    "door_wood_knock",
    "glass_breaking",
    "rooster",
    "sneezing",
)
BACKGROUND_CLASSES = ("crickets", "rain", "sea_waves", "wind")
SCENE_S = 10.0
MAX_EVENT_S = 3.0
MIN_GAP_S = 0.25
BACKGROUND_DB = -40.0
EVENT_DB_RANGE = (-34.0, -22.0)
BACKGROUND_FADE_S = 0.04
BACKGROUND_SECOND_AT_S = 4.96
SCENES_PER_FOLD = {"full": 40, "small": 2}
SEED = 20211
SOURCE_RATE = 16000


@dataclass(frozen=True)
class Part:
    """One piece of a scene: ``source[source_start_s:source_end_s]`` x ``gain`` at ``onset_s``."""

    source: str
    source_start_s: float
    source_end_s: float
    onset_s: float
    gain: float
    fade_s: float
    label: str = ""  # empty for background


@TASKS.register("esc50_scenes")
class ESC50ScenesTask(TaskBuilder):
    """200 ten-second scenes (40 per official ESC-50 fold), 10 event classes, polyphony 1."""

    info = TaskInfo(
        name="esc50_scenes",
        version="v1.0.0",
        embedding_type="event",
        prediction_type="multilabel",
        split_mode="presplit_kfold",
        nfolds=5,
        sample_duration=SCENE_S,
        evaluation=("event_onset_200ms_fms", "segment_1s_er"),
        source="scenes mixed from ESC-50 (K. J. Piczak, 2015) clips, 16 kHz rebuild",
        licence="CC BY-NC 3.0 (non-commercial), as ESC-50",
    )
    datasets = ("esc50",)

    def __init__(self) -> None:
        self._envelopes: dict[str, scenes.Envelope] = {}

    def vocabulary(self, clips: Sequence[Clip]) -> list[str]:
        return list(EVENT_CLASSES)

    def _envelope(self, data_dir: Path, source: str) -> scenes.Envelope:
        if source not in self._envelopes:
            x, rate = load_audio(data_dir / source)
            if rate != SOURCE_RATE:
                raise ValueError(f"{source}: expected {SOURCE_RATE} Hz ESC-50 audio, found {rate}")
            self._envelopes[source] = scenes.envelope(x, rate)
        return self._envelopes[source]

    def plan(self, data_dir: Path, mode: str) -> list[Clip]:
        rows = read_meta(data_dir, "esc50")
        clips: list[Clip] = []
        for fold in range(5):
            in_fold = [r for r in rows if int(r["fold"]) == fold + 1]
            clips += self._plan_fold(data_dir, fold, in_fold, SCENES_PER_FOLD[mode])
        return clips

    def _plan_fold(
        self, data_dir: Path, fold: int, rows: list[dict[str, str]], n_scenes: int
    ) -> list[Clip]:
        rng = np.random.default_rng(SEED + fold)
        events = _Cycle([r for r in rows if r["category"] in EVENT_CLASSES], rng)
        backgrounds = {
            c: _Cycle([r for r in rows if r["category"] == c], rng) for c in BACKGROUND_CLASSES
        }
        out = []
        for index in range(n_scenes):
            n_events = int(rng.integers(2, 5))
            drawn = [events.next() for _ in range(n_events)]
            levels = rng.uniform(*EVENT_DB_RANGE, size=n_events)
            spans = []
            for row in drawn:
                env = self._envelope(data_dir, row["file"])
                spans.append((env.start_s, min(env.end_s, env.start_s + MAX_EVENT_S)))
            while sum(b - a for a, b in spans) + MIN_GAP_S * (len(spans) + 1) > SCENE_S:
                spans.pop()
            drawn = drawn[: len(spans)]
            durations = [b - a for a, b in spans]
            onsets = scenes.place_events(durations, SCENE_S, MIN_GAP_S, rng)
            bg_class = BACKGROUND_CLASSES[int(rng.integers(len(BACKGROUND_CLASSES)))]
            parts = self._background(data_dir, backgrounds[bg_class])
            evs = []
            for row, (a, b), onset, level in zip(drawn, spans, onsets, levels, strict=False):
                env = self._envelope(data_dir, row["file"])
                gain = scenes.gain_for(env.rms_db, float(level))
                parts.append(Part(row["file"], a, b, onset, gain, scenes.FADE_S, row["category"]))
                evs.append(Event(row["category"], onset * 1000.0, (onset + b - a) * 1000.0))
            out.append(
                Clip(
                    split=fold_name(fold),
                    name=f"scene_fold{fold}_{index:03d}.wav",
                    events=tuple(evs),
                    sources=tuple(sorted({p.source for p in parts})),
                    group=f"esc50_fold:{fold + 1}",
                    recipe=tuple(parts),
                )
            )
        return out

    def _background(self, data_dir: Path, pool: _Cycle) -> list[Part]:
        chosen: list[str] = []
        for _ in range(len(pool.rows) * 2):
            row = pool.next()
            env = self._envelope(data_dir, row["file"])
            if env.active_fraction >= 0.95 and env.min_frame_db > -70.0:
                if row["file"] not in chosen:
                    chosen.append(row["file"])
            if len(chosen) == 2:
                break
        if len(chosen) < 2:
            raise ValueError(
                f"fewer than 2 usable background clips in {pool.rows[0]['file']}'s fold"
            )
        parts = []
        for source, onset in zip(chosen, (0.0, BACKGROUND_SECOND_AT_S), strict=True):
            env = self._envelope(data_dir, source)
            gain = scenes.gain_for(env.rms_db, BACKGROUND_DB)
            parts.append(Part(source, 0.0, SCENE_S / 2, onset, gain, BACKGROUND_FADE_S))
        return parts

    def render(
        self, clips: Sequence[Clip], data_dir: Path, sample_rate: int
    ) -> Iterator[tuple[Clip, np.ndarray]]:
        @lru_cache(maxsize=64)
        def source_audio(source: str) -> np.ndarray:
            return load_audio(data_dir / source, sample_rate=sample_rate)[0]

        length = n_samples(SCENE_S, sample_rate)
        for clip in clips:
            mix = np.zeros(length, dtype=np.float64)
            for part in clip.recipe:
                x = source_audio(part.source)
                a = round(part.source_start_s * sample_rate)
                b = round(part.source_end_s * sample_rate)
                piece = scenes.faded(x[a:b], sample_rate, part.fade_s) * part.gain
                scenes.add_at(mix, piece, round(part.onset_s * sample_rate))
            yield clip, mix.astype(np.float32)

    def extra_files(self, clips: Sequence[Clip]) -> dict[str, bytes]:
        """``scenes.csv``: one row per scene part, i.e. where every sound of every scene came from
        (source file relative to the data folder, the span used, placement and gain)."""
        lines = ["split,file,label,source,source_start_s,source_end_s,onset_s,gain_db"]
        for clip in clips:
            for p in clip.recipe:
                lines.append(
                    f"{clip.split},{clip.name},{p.label or '(background)'},{p.source},"
                    f"{p.source_start_s:.4f},{p.source_end_s:.4f},{p.onset_s:.6f},"
                    f"{20 * np.log10(p.gain):.3f}"
                )
        return {"scenes.csv": ("\n".join(lines) + "\n").encode()}


class _Cycle:
    """Rows in a random order that is reshuffled (with the shared generator) when used up."""

    def __init__(self, rows: list[dict[str, str]], rng: np.random.Generator) -> None:
        if not rows:
            raise ValueError("esc50_scenes: a fold has no clips of a needed class")
        self.rows = rows
        self._rng = rng
        self._order: list[int] = []

    def next(self) -> dict[str, str]:
        if not self._order:
            self._order = [int(i) for i in self._rng.permutation(len(self.rows))]
        return self.rows[self._order.pop(0)]
