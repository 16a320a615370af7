"""``librispeech_speakers``: speaker identification, 10 LibriSpeech test-other readers."""

from __future__ import annotations

from collections.abc import Sequence

from echoic.tasks.base import TASKS, FileTask, TaskInfo, fold_name

NFOLDS = 5


@TASKS.register("librispeech_speakers")
class LibriSpeechSpeakersTask(FileTask):
    """The 100 ``test-other`` utterances (10 speakers x 10); a speaker's utterances in file-name
    order go to folds 0,1,2,3,4,0,1,... so every fold holds 2 utterances of every speaker and no
    utterance is in two folds. Clips are cropped (or zero-padded) at the end to 10 s.

    Caveat: a speaker's ten utterances come from one chapter (one session and microphone), so the
    task is channel-matched and easy.
    """

    info = TaskInfo(
        name="librispeech_speakers",
        version="v1.0.0",
        embedding_type="scene",
        prediction_type="multiclass",
        split_mode="new_split_kfold",
        nfolds=NFOLDS,
        sample_duration=10.0,
        evaluation=("top1_acc", "mAP"),
        source="LibriSpeech test-other (Panayotov et al., 2015), via the Resemblyzer repository",
        licence="CC BY 4.0",
    )
    datasets = ("librispeech_speakers",)
    label_column = "speaker"
    small_labels = 3

    def assign_splits(self, rows: Sequence[dict[str, str]]) -> list[str | None]:
        seen: dict[str, int] = {}
        out: list[str | None] = []
        for row in rows:  # rows are sorted by file name
            if row["subset"] != "test-other":
                out.append(None)
                continue
            index = seen.get(row["speaker"], 0)
            seen[row["speaker"]] = index + 1
            out.append(fold_name(index % NFOLDS))
        return out

    def group_of(self, row: dict[str, str]) -> str:
        return "utterance:" + row["file"]
