"""``syllables_librispeech``: reference syllable boundaries of read English speech (event task).

All 351 LibriSpeech utterances of ``shared/data/librispeech_speakers``. That copy has **no
transcripts**, so each utterance is first decoded with pocketsphinx's own en-us language model and
the decoded words are then force-aligned (:mod:`echoic.tasks.syllables`): the reference is
acoustically consistent (every syllable is an aligned vowel with its maximal-onset consonants) but
the words can be wrong where the recogniser was. ``alignments.jsonl`` keeps every transcript.

Splits: 5 folds by speaker (speakers with most clips first, then by id, each to the fold with the
fewest clips so far), so a reader's ten test-other utterances stay in one fold. Clips are the first
10 s of each utterance (as the other LibriSpeech tasks); syllables ending after 10 s are left out.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from echoic.data.audio import audio_info
from echoic.tasks.base import TASKS, Clip, TaskInfo, clip_name, fold_name, read_meta
from echoic.tasks.syllables import SyllableTask

NFOLDS = 5


def speaker_folds(speakers: list[str]) -> dict[str, int]:
    """Speaker → fold index: clip counts balanced greedily, deterministic (``speakers`` has one
    entry per clip)."""
    counts = Counter(speakers)
    load = [0] * NFOLDS
    out = {}
    for speaker in sorted(counts, key=lambda s: (-counts[s], s)):
        fold = min(range(NFOLDS), key=lambda i: (load[i], i))
        out[speaker] = fold
        load[fold] += counts[speaker]
    return out


@TASKS.register("syllables_librispeech")
class SyllablesLibriSpeechTask(SyllableTask):
    """351 utterances (261 speakers), syllable events from decoded-then-aligned speech."""

    info = TaskInfo(
        name="syllables_librispeech",
        version="v1.0.0",
        embedding_type="event",
        prediction_type="multilabel",
        split_mode="new_split_kfold",
        nfolds=NFOLDS,
        sample_duration=10.0,
        evaluation=("event_onset_50ms_fms", "event_onset_200ms_fms"),
        source="LibriSpeech (Panayotov et al., 2015) via the Resemblyzer repository; syllables "
        "from pocketsphinx decoding + forced alignment, maximal-onset syllabification",
        licence="CC BY 4.0",
    )
    datasets = ("librispeech_speakers",)

    def plan(self, data_dir: Path, mode: str) -> list[Clip]:
        rows = read_meta(data_dir, self.datasets[0])
        folds = speaker_folds([r["speaker"] for r in rows])
        clips = [
            Clip(
                split=fold_name(folds[r["speaker"]]),
                name=clip_name(r["file"]),
                sources=(r["file"],),
                group="speaker:" + r["speaker"],
            )
            for r in rows
        ]
        if mode == "small":  # the shortest utterance of each fold
            length = {c.name: audio_info(data_dir / c.sources[0]).frames for c in clips}
            clips = [
                min((c for c in clips if c.split == split), key=lambda c: (length[c.name], c.name))
                for split in self.info.splits()
            ]
        return clips
