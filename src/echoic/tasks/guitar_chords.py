"""``guitar_chords``: acoustic guitar chord quality (maj/min/m7b5), folds by take."""

from __future__ import annotations

from echoic.tasks.base import TASKS, FileTask, TaskInfo, fold_name


@TASKS.register("guitar_chords")
class GuitarChordsTask(FileTask):
    """282 strums; ``take`` 00-03 (the kit's four velocity layers, separate recordings) → folds
    0-3, so a test strum is never a re-recording from its own training layer. Sources decode at
    48 kHz (32 kHz content); clips are cropped/zero-padded at the end to 2 s (most are 2.0 s)."""

    info = TaskInfo(
        name="guitar_chords",
        version="v1.0.0",
        embedding_type="scene",
        prediction_type="multiclass",
        split_mode="new_split_kfold",
        nfolds=4,
        sample_duration=2.0,
        evaluation=("top1_acc", "mAP"),
        source="belofilms.com AC-Guitar-Strums (Gabriel Verdugo Soto), Debian "
        "hydrogen-drumkits-effects",
        licence="CC BY 3.0",
    )
    datasets = ("guitar_chords",)
    label_column = "quality"
    small_labels = 3

    def split_of(self, row: dict[str, str]) -> str:
        return fold_name(int(row["take"]))

    def group_of(self, row: dict[str, str]) -> str:
        return "take:" + row["take"]
