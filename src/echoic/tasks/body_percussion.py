"""``body_percussion``: body-percussion hit type (14 classes), folds by round-robin take."""

from __future__ import annotations

from echoic.tasks.base import TASKS, FileTask, TaskInfo, fold_name


@TASKS.register("body_percussion")
class BodyPercussionTask(FileTask):
    """202 hits; ``take`` t (1-6) → fold ``(t - 1) mod 4`` as the README recommends, so every hit
    type is in every fold and test hits are unseen repetitions. Sources decode at 48 kHz (32 kHz
    content); clips are cropped/zero-padded at the end to 1 s (median length 1.03 s)."""

    info = TaskInfo(
        name="body_percussion",
        version="v1.0.0",
        embedding_type="scene",
        prediction_type="multiclass",
        split_mode="new_split_kfold",
        nfolds=4,
        sample_duration=1.0,
        evaluation=("top1_acc", "mAP"),
        source="sfzinstruments body_percussion (Samples/body)",
        licence="CC0 1.0",
    )
    datasets = ("body_percussion",)
    label_column = "hit_type"
    small_labels = 4

    def split_of(self, row: dict[str, str]) -> str:
        return fold_name((int(row["take"]) - 1) % 4)

    def group_of(self, row: dict[str, str]) -> str:
        return "take:" + row["take"]
