"""``syllables_fsdd``: syllable boundaries of spoken digits, whose words (and so syllable counts:
"zero" and "seven" have two, the other digits one) are known (event task).

Every FSDD recording is force-aligned with its digit's word by pocketsphinx (8 kHz sources,
resampled to the aligner's 16 kHz) and syllabified (:mod:`echoic.tasks.syllables`). Splits are
fsdd_digits's: leave-one-speaker-out, 6 folds. Clips are 1.0 s (as fsdd_digits); a recording whose
word does not end within 1.0 s is left out rather than given a cut syllable count.
``syllable_counts.csv`` lists per clip the word, its known syllable count and the reference's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from echoic.tasks.base import TASKS, Clip, TaskInfo, clip_name, read_meta
from echoic.tasks.fsdd_digits import FSDDDigitsTask
from echoic.tasks.syllables import SyllableTask

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DIGIT_SYLLABLES = {"zero": 2, "seven": 2} | {
    w: 1 for w in ("one", "two", "three", "four", "five", "six", "eight", "nine")
}
"""Syllable counts of the digit words, by hand (zero-ro, se-ven; the rest one syllable)."""
SMALL_DIGITS = ("0", "1", "7")


@TASKS.register("syllables_fsdd")
class SyllablesFSDDTask(SyllableTask):
    """3,000 digit recordings, 6 speaker folds, syllable events of the known word."""

    info = TaskInfo(
        name="syllables_fsdd",
        version="v1.0.0",
        embedding_type="event",
        prediction_type="multilabel",
        split_mode="new_split_kfold",
        nfolds=6,
        sample_duration=1.0,
        evaluation=("event_onset_50ms_fms", "event_onset_200ms_fms"),
        source="Free Spoken Digit Dataset (Z. Jackson and contributors); syllables from "
        "pocketsphinx forced alignment of the known digit word, maximal-onset syllabification",
        licence="CC BY-SA 4.0",
    )
    datasets = ("fsdd",)
    whole_clips_only = True

    def plan(self, data_dir: Path, mode: str) -> list[Clip]:
        rows = read_meta(data_dir, self.datasets[0])
        splits = FSDDDigitsTask().assign_splits(rows)
        clips = []
        for row, split in zip(rows, splits, strict=True):
            if mode == "small" and (row["digit"] not in SMALL_DIGITS or row["take"] != "0"):
                continue
            word = DIGIT_WORDS[int(row["digit"])]
            clips.append(
                Clip(
                    str(split),
                    clip_name(row["file"]),
                    sources=(row["file"],),
                    group="speaker:" + row["speaker"],
                    recipe=word,
                )
            )
        return clips

    def transcript(self, clip: Clip) -> str | None:
        return str(clip.recipe)

    def extra_files(self, clips: Sequence[Clip]) -> dict[str, bytes]:
        lines = ["split,file,word,known_syllables,reference_syllables"]
        lines += [
            f"{c.split},{c.name},{c.recipe},{DIGIT_SYLLABLES[str(c.recipe)]},{len(c.events)}"
            for c in clips
        ]
        return {"syllable_counts.csv": ("\n".join(lines) + "\n").encode()}
