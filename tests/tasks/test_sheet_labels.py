"""Metre and mode labels of score snippets: the metre table, the key-profile mode on scales whose
mode is known, and on real scores against music21's own reading of the same files (time and key
signature of every measure, the declared key of whole pieces). The score tests need the ``sheet``
extra: they skip without it unless ``ECHOIC_REQUIRE_SHEET=1``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from echoic.tasks.base import TaskDataError
from echoic.tasks.sheet_labels import (
    LABEL_NAMES,
    corpus_file,
    label_index,
    metre_of,
    mode_of,
    prompt_text,
    read_signatures,
    snippet_labels,
)

PIECES = (
    "bach/bwv66.6",
    "bach/bwv269",
    "schumann_robert/opus48no2",
    "mozart/k545/movement1_exposition",
    "mozart/k156/movement2",
)


@pytest.mark.parametrize(
    ("beats", "beat_type", "metre"),
    [
        (2, 2, "duple"),
        (2, 4, "duple"),
        (4, 4, "duple"),
        (3, 4, "triple"),
        (3, 8, "triple"),
        (6, 8, "duple"),
        (12, 8, "duple"),
        (9, 8, "triple"),
    ],
)
def test_metre_of_time_signatures(beats: int, beat_type: int, metre: str) -> None:
    assert metre_of(beats, beat_type) == metre


def test_irregular_metre_is_refused() -> None:
    with pytest.raises(TaskDataError, match="5/4"):
        metre_of(5, 4)


def scale(tonic: int, steps: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    pitches = np.array([60 + tonic + s for s in steps])
    weights = np.ones(len(pitches))
    weights[0] = 3.0  # the tonic held longest
    return pitches, weights


MAJOR, HARMONIC_MINOR = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 11)


@pytest.mark.parametrize("fifths", [-3, 0, 2, 5])
def test_mode_of_scales_with_the_key_signature(fifths: int) -> None:
    major_tonic = (7 * fifths) % 12
    assert mode_of(*scale(major_tonic, MAJOR), fifths) == "major"
    assert mode_of(*scale((major_tonic + 9) % 12, HARMONIC_MINOR), fifths) == "minor"


def test_label_names_and_prompts() -> None:
    assert LABEL_NAMES == ("duple major", "duple minor", "triple major", "triple minor")
    assert label_index("triple", "minor") == 3
    assert prompt_text("triple", "minor", "both") == "music in a minor key and triple metre"
    assert prompt_text("duple", "major", "metre", 1) == "a piece in duple time"
    assert "minor" in prompt_text("duple", "minor", "mode")
    with pytest.raises(TaskDataError, match="kind"):
        prompt_text("duple", "major", "tempo")


def music21_score(piece: str):  # type: ignore[no-untyped-def]
    from music21 import converter

    return converter.parse(str(corpus_file(piece)))


@pytest.mark.parametrize("piece", PIECES)
def test_signatures_match_music21_measure_by_measure(sheet_extra: None, piece: str) -> None:
    from music21 import key, meter, stream

    measures = list(music21_score(piece).parts[0].getElementsByClass(stream.Measure))
    ours = read_signatures(piece)
    assert len(ours) == len(measures)
    time = signature = None
    for (beats, beat_type, fifths), measure in zip(ours, measures, strict=True):
        # music21's signatures in force: the last ones met, measure by measure
        time = next(iter(measure.recurse().getElementsByClass(meter.TimeSignature)), time)
        signature = next(iter(measure.recurse().getElementsByClass(key.KeySignature)), signature)
        assert time is not None and signature is not None
        assert (beats, beat_type) == (time.numerator, time.denominator)
        assert fifths == signature.sharps


@pytest.mark.parametrize("piece", PIECES)
def test_mode_of_whole_pieces_is_their_declared_key(sheet_extra: None, piece: str) -> None:
    from music21 import key

    from echoic.tasks.sheet_scores import analyse_piece, corpus_root

    declared = next(music21_score(piece).recurse().getElementsByClass(key.Key)).mode
    analysed = analyse_piece(corpus_file(piece).relative_to(corpus_root()).as_posix())
    assert not isinstance(analysed, str)
    pitches = np.array([n.pitch for n in analysed.notes])
    weights = np.array([n.end - n.onset for n in analysed.notes])
    assert mode_of(pitches, weights, read_signatures(piece)[0][2]) == declared


def test_snippet_labels_follow_pairs_csv(sheet_extra: None, tmp_path: Path) -> None:
    # a pairs.csv of three snippets: labels in row order, the split's rows only
    header = "clip,piece,composer,split,first_measure,last_measure,measure_numbers,start_quarter,"
    header += "quarters,duration_s,staves,notes,image"
    rows = [
        "a.wav,bach/bwv269,bach,train,1,2,2-3,1,6,3.6,4,20,images/a.png",
        "b.wav,mozart/k156/movement2,mozart,test,0,1,1-2,0,8,4.8,4,20,images/b.png",
        "c.wav,schumann_robert/opus48no2,schumann_robert,train,2,4,3-5,4,6,3.6,2,20,images/c.png",
    ]
    (tmp_path / "pairs.csv").write_text("\n".join([header, *rows]) + "\n")
    train = snippet_labels(tmp_path, "train")
    assert [(x.time_signature, x.metre) for x in train] == [("3/4", "triple"), ("2/4", "duple")]
    assert [x.fifths for x in train] == [1, 3]
    (test,) = snippet_labels(tmp_path, "test")
    assert (test.time_signature, test.fifths, test.metre) == ("4/4", 1, "duple")
    assert test.name in LABEL_NAMES
    with pytest.raises(TaskDataError, match="split"):
        snippet_labels(tmp_path, "dev")
