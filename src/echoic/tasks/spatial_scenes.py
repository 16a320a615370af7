"""What the spatial tasks share: real sources placed in simulated rooms, rendered binaurally or as
first-order ambisonics (:mod:`echoic.data.spatial`), one builder module per task.

* Sources: ESC-50 clips (16 kHz; a k-fold evaluation set, so never in a pretraining corpus). Split
  ``train`` draws from official folds 1-3, ``valid`` from fold 4, ``test`` from fold 5 (no clip in
  two splits; ESC-50's folds also keep freesound recordings apart, except the four documented in
  docs/tasks.md). Each clip is used at most once per task: a split's clips are visited in a seeded
  random order and a clip is taken when its window (``source_s`` seconds from the start of its
  active region, moved back to fit the clip) is at least half active (10 ms frames within 30 dB of
  the clip's loudest and above -60 dBFS, :mod:`echoic.tasks.scenes`' rule), else skipped.
* Rooms: drawn per split (:func:`echoic.data.spatial.sample_room`), ``CLIPS_PER_ROOM`` clips per
  room, each with its own listener position, yaw and source direction; a room belongs to one split.
* HRTF subjects (binaural tasks): one listener per split, so every test clip is heard through a
  head the probe never saw: train = MIT KEMAR (dummy head), valid = SONICOM human 1, test =
  SONICOM human 2 (:mod:`echoic.data.hrtf`).
* Level: every rendered clip is scaled to -25 dBFS RMS over all its channels (one gain per clip,
  so interaural / inter-channel level differences are kept); the writer scales a clip down if a
  peak would clip.
* Seeds: one generator per (task, split) for rooms and placements, another for the source order,
  and one per clip for the diffuse tail; small mode keeps the first clips of each split, which are
  identical to those of the full build.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np

from echoic.data.audio import load_audio
from echoic.data.hrtf import SpatialDependencyError, load_hrtf
from echoic.data.spatial import (
    Placement,
    Room,
    room_impulse_response,
    sample_placement,
    spatialise,
)
from echoic.tasks import scenes
from echoic.tasks.base import TRAIN_VALID_TEST, Clip, TaskBuilder, TaskDataError, read_meta

ESC50_FOLDS = {"train": (1, 2, 3), "valid": (4,), "test": (5,)}
HRTF_OF_SPLIT = {"train": "mit_kemar", "valid": "sonicom_1", "test": "sonicom_2"}
BINAURAL_SOURCE = (
    "ESC-50 clips (K. J. Piczak, 2015) in pyroomacoustics shoebox rooms, rendered through the MIT "
    "KEMAR (slab) and two SONICOM human HRTFs (spatialaudiometrics)"
)
BINAURAL_LICENCE = "CC BY-NC 3.0 (non-commercial), as ESC-50; SONICOM HRTFs CC BY-SA 3.0"
CLIPS_PER_ROOM = 4
MIN_ACTIVE_FRACTION = 0.5
TARGET_RMS_DB = -25.0
SOURCE_RATE = 16000
CSV_HEADER = (
    "split,file,label,source,source_start_s,room,room_x_m,room_y_m,room_z_m,rt60_s,"
    "listener_x_m,listener_y_m,listener_z_m,yaw_deg,azimuth_deg,elevation_deg,distance_m,hrtf"
)


@dataclass(frozen=True)
class SpatialRecipe:
    """How to render one clip: the source window, the room, where everyone stands, whose ears."""

    source: str
    source_start_s: float
    room_id: str
    room: Room
    placement: Placement
    hrtf: str  # empty for FOA
    seed: tuple[int, ...]


class SpatialTask(TaskBuilder):
    """Plans ``clip_counts[mode][split]`` clips per split; subclasses draw rooms and labels."""

    fmt: ClassVar[str]
    seed: ClassVar[int]
    source_s: ClassVar[float]
    clip_counts: ClassVar[dict[str, dict[str, int]]]
    datasets = ("esc50",)

    # --- what subclasses decide -------------------------------------------------------------
    def draw_room(self, rng: np.random.Generator, room_index: int) -> tuple[Room, str]:
        """The ``room_index``-th room of a split and its label ('' when labels are per clip)."""
        raise NotImplementedError

    def draw_placement(
        self, rng: np.random.Generator, room: Room, clip_index: int, room_label: str
    ) -> tuple[Placement, str]:
        """Listener and source of the ``clip_index``-th clip of a split, and the clip's label."""
        raise NotImplementedError

    # --- planning ------------------------------------------------------------------------------
    def check_data(self, data_dir: Path) -> None:
        super().check_data(data_dir)
        try:
            if self.fmt == "binaural":
                for name in HRTF_OF_SPLIT.values():
                    load_hrtf(name)
            from echoic.data.spatial import import_pyroomacoustics

            import_pyroomacoustics()
        except SpatialDependencyError as err:
            raise TaskDataError(f"task {self.info.name} cannot render: {err}") from err

    def plan(self, data_dir: Path, mode: str) -> list[Clip]:
        rows = read_meta(data_dir, "esc50")
        clips: list[Clip] = []
        for split_index, split in enumerate(TRAIN_VALID_TEST):
            in_split = [r["file"] for r in rows if int(r["fold"]) in ESC50_FOLDS[split]]
            sources = self._sources(
                data_dir, in_split, np.random.default_rng([self.seed, split_index, 1])
            )
            rng = np.random.default_rng([self.seed, split_index])
            n = self.clip_counts[mode][split]
            for room_index in range(math.ceil(n / CLIPS_PER_ROOM)):
                room, room_label = self.draw_room(rng, room_index)
                room_id = f"{self.info.name}:{split}:room{room_index:03d}"
                for k in range(min(CLIPS_PER_ROOM, n - room_index * CLIPS_PER_ROOM)):
                    index = room_index * CLIPS_PER_ROOM + k
                    placement, label = self.draw_placement(rng, room, index, room_label)
                    source, start = next(sources)
                    recipe = SpatialRecipe(
                        source=source,
                        source_start_s=start,
                        room_id=room_id,
                        room=room,
                        placement=placement,
                        hrtf=HRTF_OF_SPLIT[split] if self.fmt == "binaural" else "",
                        seed=(self.seed, split_index, index),
                    )
                    clips.append(
                        Clip(
                            split=split,
                            name=f"{split}_room{room_index:03d}_{k}.wav",
                            labels=(label,),
                            sources=(source,),
                            group=room_id,
                            recipe=recipe,
                        )
                    )
        return clips

    def _sources(
        self, data_dir: Path, files: list[str], rng: np.random.Generator
    ) -> Iterator[tuple[str, float]]:
        """Usable ``(file, window start)`` pairs of one split, in a seeded order, each once."""
        for i in rng.permutation(len(files)):
            start = self._window(data_dir, files[int(i)])
            if start is not None:
                yield files[int(i)], start
        raise TaskDataError(
            f"task {self.info.name}: ran out of usable ESC-50 clips ({len(files)} in the split); "
            "lower the clip counts"
        )

    def _window(self, data_dir: Path, source: str) -> float | None:
        """Start (s) of the source window, or None when less than half of it is active."""
        levels, active_start_s, duration_s = source_activity(data_dir, source)
        threshold = max(float(levels.max()) - scenes.ACTIVE_RANGE_DB, scenes.ABSOLUTE_FLOOR_DB)
        start = max(0.0, min(active_start_s, duration_s - self.source_s))
        first = round(start / scenes.FRAME_S)
        window = levels[first : first + round(self.source_s / scenes.FRAME_S)]
        active = float(np.mean(window > threshold)) if window.size else 0.0
        return round(start, 3) if active >= MIN_ACTIVE_FRACTION else None

    # --- rendering -----------------------------------------------------------------------------
    def render(
        self, clips: Sequence[Clip], data_dir: Path, sample_rate: int
    ) -> Iterator[tuple[Clip, np.ndarray]]:
        @lru_cache(maxsize=16)
        def source_audio(source: str) -> np.ndarray:
            return load_audio(data_dir / source, sample_rate=sample_rate)[0]

        length = round(self.info.sample_duration * sample_rate)
        for clip in clips:
            r: SpatialRecipe = clip.recipe
            x = source_audio(r.source)
            a = round(r.source_start_s * sample_rate)
            piece = x[a : a + round(self.source_s * sample_rate)].astype(np.float64)
            piece = np.pad(piece, (0, length - piece.shape[0]))
            hrtf = load_hrtf(r.hrtf, sample_rate) if r.hrtf else None
            rir = room_impulse_response(
                r.room, r.placement, self.fmt, sample_rate, hrtf, np.random.SeedSequence(r.seed)
            )
            y = spatialise(piece, rir)
            rms = float(np.sqrt(np.mean(y**2)))
            if rms <= 0:
                raise ValueError(f"{clip.name}: rendered silence from {r.source}")
            yield clip, (y * (10.0 ** (TARGET_RMS_DB / 20.0) / rms)).astype(np.float32)

    def extra_files(self, clips: Sequence[Clip]) -> dict[str, bytes]:
        """``spatial.csv``: the geometry of every clip (room, RT60 asked for, listener position and
        yaw, the source's listener-relative azimuth / elevation / distance, HRTF set), so that
        continuous errors (degrees, seconds) can be computed from a probe's predictions."""
        lines = [CSV_HEADER]
        for clip in clips:
            r: SpatialRecipe = clip.recipe
            p = r.placement
            values = (
                *(clip.split, clip.name, clip.labels[0], r.source, r.source_start_s, r.room_id),
                *(*r.room.size_m, r.room.rt60_s, *p.listener_m, p.yaw_deg),
                *(p.azimuth_deg, p.elevation_deg, p.distance_m, r.hrtf),
            )
            lines.append(",".join(str(v) for v in values))
        return {"spatial.csv": ("\n".join(lines) + "\n").encode()}


@cache
def source_activity(data_dir: Path, source: str) -> tuple[np.ndarray, float, float]:
    """A source's 10 ms frame levels (dBFS), the start of its active region and its duration (s);
    decoded once per process, shared by the spatial tasks."""
    x, rate = load_audio(data_dir / source)
    if rate != SOURCE_RATE:
        raise TaskDataError(f"{source}: expected {SOURCE_RATE} Hz ESC-50 audio, found {rate}")
    return scenes.frame_levels_db(x, rate), scenes.envelope(x, rate).start_s, x.shape[0] / rate


AZIMUTH_SECTORS = 8
SECTOR_DEG = 360.0 / AZIMUTH_SECTORS
SECTOR_LABELS = tuple(f"az{round(i * SECTOR_DEG):03d}" for i in range(AZIMUTH_SECTORS))
"""Sector labels in sector order (sorted order too): ``az000`` = front ±22.5°, ``az090`` = left."""


class LocalisationTask(SpatialTask):
    """Azimuth sector of the source: 8 classes of 45° centred on front, front-left, left, ...
    Rooms: RT60 uniform in ``rt60_range_s``; clip ``i`` of a split is in sector ``i mod 8`` (balanced),
    its azimuth uniform within the sector; elevation, distance: :class:`PlacementRanges` defaults."""

    rt60_range_s: ClassVar[tuple[float, float]] = (0.2, 0.8)

    def vocabulary(self, clips: Sequence[Clip]) -> list[str]:
        return list(SECTOR_LABELS)

    def draw_room(self, rng: np.random.Generator, room_index: int) -> tuple[Room, str]:
        from echoic.data.spatial import sample_room

        return sample_room(rng, self.rt60_range_s), ""

    def draw_placement(
        self, rng: np.random.Generator, room: Room, clip_index: int, room_label: str
    ) -> tuple[Placement, str]:
        sector = clip_index % AZIMUTH_SECTORS
        centre = sector * SECTOR_DEG
        span = (centre - SECTOR_DEG / 2, centre + SECTOR_DEG / 2)
        return sample_placement(rng, room, span), SECTOR_LABELS[sector]
