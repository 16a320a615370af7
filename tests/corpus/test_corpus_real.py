"""The shipped model's pretraining corpus (its manifest is committed) against the real tasks.

Every evaluation task is planned from the shared data (no build needed); the audio each held-out
clip comes from (every clip of a k-fold task, valid and test clips of a fixed-split task) is
hashed and looked up in the corpus manifest, by content and by recorded origin.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

from echoic.corpus.build import file_sha256
from echoic.tasks.writer import get_builder, task_names

MANIFEST = Path(__file__).resolve().parents[2] / "docs" / "models" / "echoic-tiny.corpus.csv.gz"


def _corpus() -> list[dict[str, str]]:
    with gzip.open(MANIFEST, "rt", newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_corpus_manifest_is_complete() -> None:
    rows = _corpus()
    assert len({r["sha256"] for r in rows}) == len(rows)  # no file twice
    by_source: dict[str, float] = {}
    for r in rows:
        by_source[r["source"]] = by_source.get(r["source"], 0.0) + float(r["duration_s"])
    assert set(by_source) == {
        "gcompris_voices",
        "arabic_speech_commands_train",
        "soundfont_train",
        "music21",
    }


def test_no_held_out_evaluation_audio_in_the_corpus(shared_data: Path) -> None:
    rows = _corpus()
    hashes = {r["sha256"] for r in rows}
    origins = {r["origin"] for r in rows}
    checked_files = 0
    for name in task_names():
        builder = get_builder(name)
        kfold = "kfold" in builder.info.split_mode
        for clip in builder.plan(shared_data, "full"):
            if not kfold and clip.split == "train":
                continue
            for source in clip.sources:
                assert source not in origins, f"{name} {clip.split} {source} is in the corpus"
                path = shared_data / source
                if path.is_file():
                    assert file_sha256(path) not in hashes, f"{name}: {source} content in corpus"
                    checked_files += 1
    assert checked_files > 10_000  # ESC-50, FSDD, speech commands, ... were really hashed


def test_corpus_origins_use_the_task_plans_vocabulary(shared_data: Path) -> None:
    # the origin lookup above can match: the corpus's speech-command origins are exactly the
    # train split's sources as the task plans them (and none of the other splits')
    arabic = get_builder("arabic_speech_commands").plan(shared_data, "full")
    train_sources = {s for c in arabic if c.split == "train" for s in c.sources}
    corpus = {r["origin"] for r in _corpus() if r["source"] == "arabic_speech_commands_train"}
    assert corpus == train_sources
