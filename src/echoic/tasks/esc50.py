"""``esc50``: ESC-50 environmental sound classification, the 5 official folds (HEAR's esc50)."""

from __future__ import annotations

from echoic.tasks.base import TASKS, FileTask, TaskInfo, fold_name

VERSION = "v1.0.0"


@TASKS.register("esc50")
class ESC50Task(FileTask):
    """50 classes x 40 clips; fold ``k`` (1-5) of ``meta.csv`` → split ``fold0{k-1}``.

    Clips are 80,001 samples at 16 kHz in the source; the writer crops them to exactly 5.0 s.
    Clips cut from one freesound recording share an official fold, so the folds are source-disjoint.
    """

    info = TaskInfo(
        name="esc50",
        version=VERSION,
        embedding_type="scene",
        prediction_type="multiclass",
        split_mode="presplit_kfold",
        nfolds=5,
        sample_duration=5.0,
        evaluation=("top1_acc", "mAP"),
        source="ESC-50 (K. J. Piczak, 2015), 16 kHz rebuild in shared/data/esc50",
        licence="CC BY-NC 3.0 (non-commercial)",
    )
    datasets = ("esc50",)
    label_column = "category"
    small_labels = 5

    def split_of(self, row: dict[str, str]) -> str:
        return fold_name(int(row["fold"]) - 1)

    def group_of(self, row: dict[str, str]) -> str:
        return "freesound:" + row["file"].rsplit("/", 1)[-1].split("-")[1]
