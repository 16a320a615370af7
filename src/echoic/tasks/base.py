"""What a task builder is: HEAR task metadata, the clips it plans, and how it renders them.

A builder is registered in :data:`TASKS` under its task name (one module per task in
``echoic.tasks``; dropping a file there is enough). The writer (:mod:`echoic.tasks.writer`) turns a
builder's plan into the HEAR 2021 layout::

    <name>-<version>-<mode>/task_metadata.json
    <name>-<version>-<mode>/labelvocabulary.csv          idx,label
    <name>-<version>-<mode>/<split>.json                 scene: file -> [labels]
                                                         event: file -> [{label, start, end}] (ms)
    <name>-<version>-<mode>/<sample rate>/<split>/<file>.wav    16-bit PCM (mono unless
                                                         ``info.channels`` > 1)

Builders never write files themselves: :meth:`TaskBuilder.plan` lists the clips (cheap, from the
metadata only where possible) and :meth:`TaskBuilder.render` yields their audio, so that the writer
can skip clips already on disk.
"""

from __future__ import annotations

import csv
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from echoic.data.audio import load_audio
from echoic.errors import EchoicError
from echoic.registry import Registry

TASKS: Registry[type[TaskBuilder]] = Registry("task", discover_package="echoic.tasks")
"""Task name → builder class (instantiated without arguments)."""

MODES = ("full", "small")
TRAIN_VALID_TEST = ("train", "valid", "test")


class TaskDataError(EchoicError):
    """The source data a builder needs is missing or does not look as expected."""


@dataclass(frozen=True)
class Event:
    """One labelled sound event of an event task; times in milliseconds from the clip start."""

    label: str
    start: float
    end: float


@dataclass(frozen=True)
class Clip:
    """One output clip of a task.

    split: ``fold00``... for k-fold tasks, ``train``/``valid``/``test`` otherwise.
    name: the wav file name, unique within the task (HEAR keys split files by it).
    labels: the clip's labels (scene tasks).
    events: the clip's events (event tasks).
    sources: source files relative to the data folder (what the leakage tests check).
    group: the unit that must not cross splits (speaker, kit, take, ...), for bookkeeping only.
    recipe: builder-specific rendering instructions (e.g. a scene's mixing plan).
    """

    split: str
    name: str
    labels: tuple[str, ...] = ()
    events: tuple[Event, ...] = ()
    sources: tuple[str, ...] = ()
    group: str = ""
    recipe: Any = field(default=None, compare=False)


@dataclass(frozen=True)
class TaskInfo:
    """The HEAR ``task_metadata.json`` fields of a task, plus where it comes from.

    split_mode: ``presplit_kfold`` (folds given by the source), ``new_split_kfold`` (folds made by
        the builder) or ``trainvaltest``.
    sample_duration: every clip is padded/cropped to this many seconds.
    evaluation: metric names, the primary one first (HEAR names: ``top1_acc``, ``pitch_acc``,
        ``chroma_acc``, ``event_onset_200ms_fms``, ``segment_1s_er``, ``mAP``, ...).
    channels: audio channels of every wav (1: mono). Multichannel tasks write ``channels`` and
        ``channel_layout`` (what each channel is, in file order) into the metadata as echoic extras.
    """

    name: str
    version: str
    embedding_type: str
    prediction_type: str
    split_mode: str
    sample_duration: float
    evaluation: tuple[str, ...]
    nfolds: int | None = None
    source: str = ""
    licence: str = ""
    channels: int = 1
    channel_layout: str = ""

    def splits(self) -> tuple[str, ...]:
        if self.split_mode == "trainvaltest":
            return TRAIN_VALID_TEST
        if self.nfolds is None:
            raise ValueError(f"task {self.name}: k-fold split_mode needs nfolds")
        return tuple(fold_name(i) for i in range(self.nfolds))

    def directory_name(self, mode: str) -> str:
        return f"{self.name}-{self.version}-{mode}"

    def metadata(self, mode: str) -> dict[str, Any]:
        """The ``task_metadata.json`` content (HEAR fields first, echoic extras after)."""
        meta: dict[str, Any] = {
            "task_name": self.name,
            "version": self.version,
            "embedding_type": self.embedding_type,
            "prediction_type": self.prediction_type,
            "split_mode": self.split_mode,
        }
        if self.nfolds is not None:
            meta["nfolds"] = self.nfolds
        meta.update(
            {
                "sample_duration": float(self.sample_duration),
                "evaluation": list(self.evaluation),
                "splits": list(self.splits()),
                "default_mode": "full",
                "mode": mode,
                "source": self.source,
                "licence": self.licence,
                "builder": "echoic",
            }
        )
        if self.channels != 1:
            meta.update({"channels": self.channels, "channel_layout": self.channel_layout})
        return meta


def fold_name(index: int) -> str:
    """HEAR's fold split names: 0 → ``fold00``."""
    return f"fold{index:02d}"


class TaskBuilder(ABC):
    """Plans and renders one task. Subclasses set :attr:`info` and implement :meth:`plan`."""

    info: TaskInfo
    datasets: tuple[str, ...] = ()
    """Folders of the data directory the task reads (checked before planning)."""

    @abstractmethod
    def plan(self, data_dir: Path, mode: str) -> list[Clip]:
        """Every clip of the task in ``mode`` (``full`` or ``small``), deterministic order."""

    def vocabulary(self, clips: Sequence[Clip]) -> list[str]:
        """Labels in index order (default: sorted)."""
        labels = {label for c in clips for label in c.labels} | {
            e.label for c in clips for e in c.events
        }
        return sorted(labels)

    def render(
        self, clips: Sequence[Clip], data_dir: Path, sample_rate: int
    ) -> Iterator[tuple[Clip, np.ndarray]]:
        """Yield ``(clip, audio)`` for each clip: ``audio`` is ``(S,)`` float32 at ``sample_rate``
        with exactly ``round(sample_duration * sample_rate)`` samples (``(C, S)`` for a task of
        ``info.channels = C > 1``).

        Default: the clip's single source file, decoded and resampled, then cropped/padded.
        """
        for clip in clips:
            yield (
                clip,
                load_fixed(data_dir / clip.sources[0], sample_rate, self.info.sample_duration),
            )

    def annotate(self, clips: Sequence[Clip], data_dir: Path, task_dir: Path) -> list[Clip]:
        """Labels that need the audio itself (e.g. forced alignment), added after :meth:`plan`.

        Called by the writer before anything else is written; may drop clips it cannot label.
        Such a builder may keep one resumable cache file of its own in ``task_dir`` (written
        atomically, deterministic content), so that :meth:`plan` stays cheap. Default: unchanged.
        """
        return list(clips)

    def extra_files(self, clips: Sequence[Clip]) -> dict[str, bytes]:
        """Additional files for the task folder, ``name → bytes`` (default: none)."""
        return {}

    def check_data(self, data_dir: Path) -> None:
        """Raise :class:`TaskDataError` when a needed data folder or its ``meta.csv`` is absent."""
        for name in self.datasets:
            meta = data_dir / name / "meta.csv"
            if not meta.is_file():
                raise TaskDataError(
                    f"task {self.info.name} needs the {name!r} data set: expected {meta}, "
                    f"found nothing. Pass --data DIR (or set ECHOIC_DATA) to the folder that "
                    f"holds {name}/meta.csv"
                )


def n_samples(duration_s: float, sample_rate: int) -> int:
    return round(duration_s * sample_rate)


def fit_length(x: np.ndarray, length: int) -> np.ndarray:
    """Crop the end or zero-pad the end of ``(S,)`` audio to ``length`` samples."""
    if x.shape[0] >= length:
        return np.ascontiguousarray(x[:length], dtype=np.float32)
    return np.pad(x.astype(np.float32, copy=False), (0, length - x.shape[0]))


def load_fixed(path: Path, sample_rate: int, duration_s: float) -> np.ndarray:
    """Decode the first ``duration_s`` seconds of ``path`` at ``sample_rate``; zero-pad if shorter.

    A little more than needed is decoded so that the resampler's edge does not fall in the clip.
    """
    x, _ = load_audio(path, sample_rate=sample_rate, duration_s=duration_s + 0.05)
    return fit_length(x, n_samples(duration_s, sample_rate))


def read_meta(data_dir: Path, dataset: str) -> list[dict[str, str]]:
    """Rows of ``<data_dir>/<dataset>/meta.csv`` with ``file`` made relative to ``data_dir``."""
    path = data_dir / dataset / "meta.csv"
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or "file" not in rows[0]:
        raise TaskDataError(f"{path}: expected a csv with a 'file' column and rows; found none")
    for row in rows:
        row["file"] = f"{dataset}/{row['file']}"
    return sorted(rows, key=lambda r: r["file"])


def clip_name(source: str) -> str:
    """Output wav name of a source file: its path below ``audio/`` with ``/`` → ``__``."""
    stem = source.split("/audio/", 1)[-1].rsplit(".", 1)[0]
    return stem.replace("/", "__").replace(" ", "_") + ".wav"


def small_subset(
    clips: Iterable[Clip], n_labels: int, per_label: int, label_order: Callable[[str], Any] = str
) -> list[Clip]:
    """A tiny deterministic subset: the first ``n_labels`` labels, ``per_label`` clips of each per
    split (in plan order)."""
    clips = list(clips)
    keep_labels = set(sorted({c.labels[0] for c in clips}, key=label_order)[:n_labels])
    counts: dict[tuple[str, str], int] = {}
    out = []
    for c in clips:
        key = (c.split, c.labels[0])
        if c.labels[0] in keep_labels and counts.get(key, 0) < per_label:
            counts[key] = counts.get(key, 0) + 1
            out.append(c)
    return out


class FileTask(TaskBuilder):
    """A scene task with one source file per clip, listed in one data set's ``meta.csv``.

    Subclasses set :attr:`info`, :attr:`datasets` (one entry), :attr:`label_column` and implement
    :meth:`split_of` or :meth:`assign_splits` (and :meth:`group_of` for the bookkeeping group).
    """

    label_column: str
    small_labels = 4
    small_per_label = 1

    def split_of(self, row: dict[str, str]) -> str | None:
        """The split of one meta.csv row (None leaves the row out)."""
        raise NotImplementedError(f"{type(self).__name__} must define split_of or assign_splits")

    def assign_splits(self, rows: Sequence[dict[str, str]]) -> list[str | None]:
        """The split of every row (default: :meth:`split_of` row by row)."""
        return [self.split_of(row) for row in rows]

    def group_of(self, row: dict[str, str]) -> str:
        return row["file"]

    def rows(self, data_dir: Path) -> list[dict[str, str]]:
        return read_meta(data_dir, self.datasets[0])

    def plan(self, data_dir: Path, mode: str) -> list[Clip]:
        rows = self.rows(data_dir)
        clips = []
        for row, split in zip(rows, self.assign_splits(rows), strict=True):
            if split is None:
                continue
            clips.append(
                Clip(
                    split=split,
                    name=clip_name(row["file"]),
                    labels=(row[self.label_column],),
                    sources=(row["file"],),
                    group=self.group_of(row),
                )
            )
        if mode == "small":
            clips = small_subset(clips, self.small_labels, self.small_per_label)
        return clips
