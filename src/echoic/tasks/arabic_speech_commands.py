"""``arabic_speech_commands``: 40 Arabic keywords, the dataset's speaker-disjoint split."""

from __future__ import annotations

from echoic.tasks.base import TASKS, FileTask, TaskInfo

_SPLITS = {"train": "train", "val": "valid", "test": "test"}


@TASKS.register("arabic_speech_commands")
class ArabicSpeechCommandsTask(FileTask):
    """12,000 one-second clips; the official ``train``/``val``/``test`` csv files (18/6/6 speakers)
    become HEAR's ``train``/``valid``/``test``. Labels are the English keyword names."""

    info = TaskInfo(
        name="arabic_speech_commands",
        version="v1.0.0",
        embedding_type="scene",
        prediction_type="multiclass",
        split_mode="trainvaltest",
        sample_duration=1.0,
        evaluation=("top1_acc", "mAP"),
        source="Arabic Speech Commands (Ghandoura, Hjabo, Al Dakkak, 2021)",
        licence="CC BY 4.0",
    )
    datasets = ("arabic_speech_commands",)
    label_column = "keyword"
    small_labels = 6

    def split_of(self, row: dict[str, str]) -> str:
        return _SPLITS[row["split"]]

    def group_of(self, row: dict[str, str]) -> str:
        return "speaker:" + row["speaker"]
