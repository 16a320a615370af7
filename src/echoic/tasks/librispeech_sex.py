"""``librispeech_sex``: reader sex (female/male) from 251 LibriSpeech speakers, speaker-disjoint."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from echoic.tasks.base import TASKS, FileTask, TaskInfo, fold_name

NFOLDS = 5
_SEX = {"F": "female", "M": "male"}


@TASKS.register("librispeech_sex")
class LibriSpeechSexTask(FileTask):
    """The 251 ``train-clean-100`` utterances, one per speaker, so folds are speaker-disjoint by
    construction. Stratified: within each sex, speakers in increasing id order go to folds
    0,1,2,3,4,0,... Clips are cropped (or zero-padded) at the end to 10 s."""

    info = TaskInfo(
        name="librispeech_sex",
        version="v1.0.0",
        embedding_type="scene",
        prediction_type="multiclass",
        split_mode="new_split_kfold",
        nfolds=NFOLDS,
        sample_duration=10.0,
        evaluation=("top1_acc", "mAP"),
        source="LibriSpeech train-clean-100 (Panayotov et al., 2015), via the Resemblyzer repository",
        licence="CC BY 4.0",
    )
    datasets = ("librispeech_speakers",)
    label_column = "sex_label"
    small_labels = 2
    small_per_label = 2

    def rows(self, data_dir: Path) -> list[dict[str, str]]:
        rows = super().rows(data_dir)
        for row in rows:
            row["sex_label"] = _SEX[row["sex"]]
        return rows

    def assign_splits(self, rows: Sequence[dict[str, str]]) -> list[str | None]:
        chosen = [r for r in rows if r["subset"] == "train-clean-100"]
        fold: dict[str, str] = {}
        for sex in sorted(_SEX):
            speakers = sorted({int(r["speaker"]) for r in chosen if r["sex"] == sex})
            for i, speaker in enumerate(speakers):
                fold[str(speaker)] = fold_name(i % NFOLDS)
        return [fold[r["speaker"]] if r["subset"] == "train-clean-100" else None for r in rows]

    def group_of(self, row: dict[str, str]) -> str:
        return "speaker:" + row["speaker"]
