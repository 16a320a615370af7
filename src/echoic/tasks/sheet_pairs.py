"""Read a built ``sheet_snippets`` folder: the aligned (audio, image) pairs of one split.

``read_sheet_pairs(task_dir, "test")`` returns a :class:`SheetPairs`: the split's rows of
``pairs.csv`` in file order, their clips as one ``(N, S)`` int16 array at the folder's sample
rate and their images as ``(h, w)`` uint8 grayscale arrays. Needs Pillow (a dependency of
matplotlib) and soundfile only.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from echoic.tasks.base import TRAIN_VALID_TEST, TaskDataError

__all__ = ["SheetPairs", "read_sheet_pairs"]


@dataclass
class SheetPairs:
    """One split of a ``sheet_snippets`` folder; row ``i`` of every field is one snippet."""

    clips: list[str]
    pieces: list[str]
    composers: list[str]
    durations_s: np.ndarray
    audio: np.ndarray
    """``(N, S)`` int16 clips (zero after ``durations_s``)."""
    images: list[np.ndarray]
    """``(h, w)`` uint8 grayscale, 255 = paper."""
    sample_rate: int

    def __len__(self) -> int:
        return len(self.clips)


def read_sheet_pairs(
    task_dir: str | Path, split: str, sample_rate: int = 16000, limit: int | None = None
) -> SheetPairs:
    """The ``split`` pairs of ``task_dir`` (the first ``limit`` rows when given)."""
    from PIL import Image

    task_dir = Path(task_dir)
    if split not in TRAIN_VALID_TEST:
        raise TaskDataError(f"split must be one of {TRAIN_VALID_TEST}; found {split!r}")
    table = task_dir / "pairs.csv"
    audio_dir = task_dir / str(sample_rate) / split
    if not table.is_file() or not audio_dir.is_dir():
        raise TaskDataError(
            f"expected a sheet_snippets folder with pairs.csv and {sample_rate}/{split}/ at "
            f"{task_dir}; found none. Fix: echoic tasks build --tasks sheet_snippets --out DIR"
        )
    with table.open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split]
    rows = rows[:limit] if limit is not None else rows
    if not rows:
        raise TaskDataError(f"{table}: no rows of split {split!r}; expected some")
    waves, images = [], []
    for row in rows:
        wave, rate = sf.read(str(audio_dir / row["clip"]), dtype="int16")
        if rate != sample_rate or wave.ndim != 1:
            raise TaskDataError(
                f"{audio_dir / row['clip']}: expected mono audio at {sample_rate} Hz; found "
                f"{wave.ndim} dims at {rate} Hz"
            )
        waves.append(wave)
        with Image.open(task_dir / row["image"]) as image:
            images.append(np.asarray(image.convert("L"), dtype=np.uint8))
    if len({w.shape[0] for w in waves}) != 1:
        raise TaskDataError(f"{audio_dir}: clips of different lengths; expected one length")
    return SheetPairs(
        clips=[r["clip"] for r in rows],
        pieces=[r["piece"] for r in rows],
        composers=[r["composer"] for r in rows],
        durations_s=np.array([float(r["duration_s"]) for r in rows]),
        audio=np.stack(waves),
        images=images,
        sample_rate=sample_rate,
    )
