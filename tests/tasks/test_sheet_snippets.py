"""``sheet_snippets``: each snippet's audio plays the measures its image engraves.

The small build (5 pieces, 3 snippets each) is read back and checked against music21 parsed here,
independently of the builder: the clip lasts as long as the measures at the task's tempo and is
silent after them, its pitch classes are those of the measures' notes (a semitone off scores
worse), the image holds five staff lines per staff, ``pairs.csv`` agrees with the HEAR files,
composers never cross splits, and a rebuild (from the analysis cache) gives identical bytes.
Needs the ``sheet`` extra and fluidsynth: skips without them unless ``ECHOIC_REQUIRE_SHEET=1``.
"""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from echoic.tasks.sheet_audio import SECONDS_PER_QUARTER, render_snippets
from echoic.tasks.sheet_scores import Measure, Piece, ScoreNote
from echoic.tasks.sheet_snippets import (
    CLIP_S,
    EXCLUDED,
    MAX_SNIPPET_QUARTERS,
    SPLIT_OF_COMPOSER,
    evenly_spaced,
    measure_runs,
)

RATE = 16000


@pytest.fixture(scope="module")
def built(sheet_extra: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from echoic.tasks.writer import build_task, get_builder

    out = tmp_path_factory.mktemp("sheet")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ECHOIC_CACHE", str(out / "cache"))  # parse every score afresh
        result = build_task(get_builder("sheet_snippets"), out / "a", out, RATE, "small", False)
    return result.directory


def rows_of(task_dir: Path) -> list[dict[str, str]]:
    with (task_dir / "pairs.csv").open(newline="") as f:
        return list(csv.DictReader(f))


@functools.cache
def music21_measures(piece: str) -> list[list]:
    """Measures of every part of the score, parsed here with music21 alone."""
    import music21
    from music21 import converter, stream

    root = Path(music21.__file__).parent / "corpus"
    path = next(p for p in root.glob(piece + ".*") if p.suffix in (".mxl", ".xml", ".musicxml"))
    score = converter.parse(str(path))
    return [list(p.getElementsByClass(stream.Measure)) for p in score.parts]


def test_pairs_csv_matches_the_hear_files(built: Path) -> None:
    rows = rows_of(built)
    assert len(rows) == 15
    labels = {}
    for split in ("train", "valid", "test"):
        labels.update(json.loads((built / f"{split}.json").read_text()))
    assert sorted(labels) == sorted(r["clip"] for r in rows)
    for row in rows:
        assert labels[row["clip"]] == [row["piece"]]
        assert (built / str(RATE) / row["split"] / row["clip"]).is_file()
        assert (built / row["image"]).is_file()
        assert row["composer"] == row["piece"].split("/")[0]
        assert row["split"] == SPLIT_OF_COMPOSER[row["composer"]]
        assert 0 < float(row["duration_s"]) <= MAX_SNIPPET_QUARTERS * SECONDS_PER_QUARTER
    meta = json.loads((built / "task_metadata.json").read_text())
    assert meta["split_mode"] == "trainvaltest" and meta["sample_duration"] == CLIP_S


def test_composers_never_cross_splits(built: Path) -> None:
    from echoic.tasks.sheet_snippets import candidate_keys

    by_composer: dict[str, set[str]] = {}
    for row in rows_of(built):
        by_composer.setdefault(row["composer"], set()).add(row["split"])
    assert all(len(splits) == 1 for splits in by_composer.values())
    keys = candidate_keys()  # the full build's pieces (listing only, no parsing)
    test = {k.split("/")[0] for k in keys if SPLIT_OF_COMPOSER[k.split("/")[0]] == "test"}
    assert test == {"mozart", "haydn"}
    assert not set(EXCLUDED) & set(keys)


def test_audio_lasts_as_long_as_the_measures(built: Path) -> None:
    for row in rows_of(built):
        first, last = int(row["first_measure"]), int(row["last_measure"])
        parts = music21_measures(row["piece"])
        quarters = max(
            sum(float(m.duration.quarterLength) for m in part[first : last + 1]) for part in parts
        )
        assert float(row["quarters"]) == pytest.approx(quarters)
        seconds = quarters * SECONDS_PER_QUARTER
        assert float(row["duration_s"]) == pytest.approx(seconds)
        x, rate = sf.read(str(built / str(RATE) / row["split"] / row["clip"]), dtype="float64")
        assert rate == RATE and x.shape == (round(CLIP_S * RATE),)
        end = round(seconds * RATE)
        assert np.all(x[end:] == 0.0), row["clip"]  # nothing after the last measure
        assert np.sqrt(np.mean(x[: end // 2] ** 2)) > 0.01, row["clip"]  # notes from the start


def _chroma_of_audio(x: np.ndarray) -> np.ndarray:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    keep = (freqs > 50) & (freqs < 2000)
    pitch_class = np.round(69 + 12 * np.log2(freqs[keep] / 440.0)).astype(int) % 12
    chroma = np.bincount(pitch_class, weights=spectrum[keep], minlength=12)
    return chroma / np.linalg.norm(chroma)


def _chroma_of_notes(parts: list[list], first: int, last: int) -> np.ndarray:
    from music21 import chord

    chroma = np.zeros(12)
    for part in parts:
        for measure in part[first : last + 1]:
            for n in measure.recurse().notes:
                pitches = n.pitches if isinstance(n, chord.Chord) else [n.pitch]
                for p in pitches:
                    chroma[p.midi % 12] += float(n.quarterLength)
    return chroma / np.linalg.norm(chroma)


def test_audio_plays_the_pitch_classes_of_the_measures(built: Path) -> None:
    own = []
    for row in rows_of(built):
        first, last = int(row["first_measure"]), int(row["last_measure"])
        parts = music21_measures(row["piece"])
        notes = _chroma_of_notes(parts, first, last)
        x, _ = sf.read(str(built / str(RATE) / row["split"] / row["clip"]), dtype="float64")
        audio = _chroma_of_audio(x[: round(float(row["duration_s"]) * RATE)])
        own.append(float(audio @ notes))
        for shift in (-1, 1):  # the same notes a semitone off match worse
            assert audio @ np.roll(notes, shift) < own[-1], (row["clip"], shift)
    assert np.mean(own) > 0.7


def test_images_are_one_system_of_staff_lines(built: Path) -> None:
    from PIL import Image

    for row in rows_of(built):
        with Image.open(built / row["image"]) as image:
            assert image.mode == "L" and image.height == 224
            pixels = np.asarray(image, dtype=np.float64)
        ink = (255.0 - pixels) / 255.0
        assert 0.02 < ink.mean() < 0.4, row["image"]  # neither blank nor black
        lines = (ink > 0.1).mean(axis=1) > 0.5  # rows dark across half the width
        runs = int(lines[0]) + int(np.sum(lines[1:] & ~lines[:-1]))
        staves = int(row["staves"])
        assert 5 * staves <= runs <= 5 * staves + 2, (row["image"], runs, staves)


def test_rebuild_gives_identical_bytes(built: Path, tmp_path: Path) -> None:
    from echoic.tasks.writer import build_task, get_builder

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ECHOIC_CACHE", str(built.parents[1] / "cache"))  # the cache the first filled
        again = build_task(get_builder("sheet_snippets"), tmp_path, tmp_path, RATE, "small", False)
    first = {p.relative_to(built): p.read_bytes() for p in built.rglob("*") if p.is_file()}
    second = {
        p.relative_to(again.directory): p.read_bytes()
        for p in again.directory.rglob("*")
        if p.is_file()
    }
    assert first.keys() == second.keys() and first == second


def _piece(
    lengths: list[float], complete: list[bool] | None = None, silent: set[int] = frozenset()
) -> Piece:
    measures, offset = [], 0.0
    for i, q in enumerate(lengths):
        measures.append(Measure(i, i + 1, offset, q, True if complete is None else complete[i]))
        offset += q
    notes = tuple(
        ScoreNote(0, 60, m.offset, m.offset + m.quarters)
        for m in measures
        if m.position not in silent
    )
    return Piece("x/y.mxl", "x/y.mxl", "x", 2, tuple(measures), notes)


def test_measure_runs_fill_at_most_eight_quarters() -> None:
    # pickup + 4/4 bars: the pickup joins the first bar; a run never passes 8 quarters
    assert measure_runs(_piece([1, 4, 4, 4, 4, 4])) == [(0, 1), (2, 3), (4, 5)]
    assert measure_runs(_piece([2, 2, 2, 2, 2])) == [(0, 3)]  # the last 2/4 bar alone is too short
    assert measure_runs(_piece([12, 4, 4])) == [(1, 2)]  # a 12-quarter bar is skipped
    assert measure_runs(_piece([4, 4, 4, 4], complete=[True, False, True, True])) == [
        (0, 0),
        (2, 3),
    ]
    assert measure_runs(_piece([4, 4, 4, 4], silent={2, 3})) == [(0, 1)]
    assert evenly_spaced([(i, i) for i in range(10)], 3) == [(0, 0), (4, 4), (9, 9)]


def test_rendered_note_sounds_where_the_score_puts_it(sheet_extra: None) -> None:
    # A4 from beat 2 to beat 4 of a 4/4 bar at the task's tempo: 440 Hz, silent before 0.6 s
    onset, end = 1 * SECONDS_PER_QUARTER, 3 * SECONDS_PER_QUARTER
    (x,) = render_snippets([(4 * SECONDS_PER_QUARTER, [(0, 69, onset, end)])], RATE, CLIP_S)
    assert np.max(np.abs(x[: round(onset * RATE) - 80])) < 1e-4
    segment = x[round(onset * RATE) : round(end * RATE)]
    freqs = np.fft.rfftfreq(len(segment), 1 / RATE)
    assert abs(freqs[np.argmax(np.abs(np.fft.rfft(segment)))] - 440.0) < 3.0
    assert np.all(x[round(4 * SECONDS_PER_QUARTER * RATE) :] == 0.0)
