"""``fsdd_digits``: spoken digits 0-9, leave-one-speaker-out folds (6 speakers → 6 folds)."""

from __future__ import annotations

from collections.abc import Sequence

from echoic.tasks.base import TASKS, FileTask, TaskDataError, TaskInfo, fold_name


@TASKS.register("fsdd_digits")
class FSDDDigitsTask(FileTask):
    """3,000 clips; fold ``i`` holds every clip of the ``i``-th speaker in sorted name order, so
    each test fold is an unseen voice. Clips (0.14-2.28 s, 99 % under 0.92 s) are zero-padded or
    cropped at the end to 1.0 s; they are resampled from 8 kHz."""

    info = TaskInfo(
        name="fsdd_digits",
        version="v1.0.0",
        embedding_type="scene",
        prediction_type="multiclass",
        split_mode="new_split_kfold",
        nfolds=6,
        sample_duration=1.0,
        evaluation=("top1_acc", "mAP"),
        source="Free Spoken Digit Dataset (Z. Jackson and contributors)",
        licence="CC BY-SA 4.0",
    )
    datasets = ("fsdd",)
    label_column = "digit"
    small_labels = 4

    def assign_splits(self, rows: Sequence[dict[str, str]]) -> list[str | None]:
        speakers = sorted({r["speaker"] for r in rows})
        if len(speakers) != 6:
            raise TaskDataError(f"fsdd: expected 6 speakers, found {len(speakers)}: {speakers}")
        fold = {speaker: fold_name(i) for i, speaker in enumerate(speakers)}
        return [fold[r["speaker"]] for r in rows]

    def group_of(self, row: dict[str, str]) -> str:
        return "speaker:" + row["speaker"]
