"""Musical labels of ``sheet_snippets`` snippets that every split has: metre and mode.

The split is by composer, so piece and composer are held out by construction; the label-supervised
video–music methods (:mod:`echoic.objectives.video_music`) need labels that train, valid and test
all have. ``pairs.csv`` carries none, so they are read from the scores themselves:

* **metre** (``duple`` / ``triple``): the time signature in force at the snippet's first measure,
  read from the MusicXML (``<time>`` of the first part, measure by measure). Simple metres by
  their beats (2, 4 → duple; 3 → triple), compound ones (beat unit 8 or shorter, beats a multiple
  of 3 above 3) by their groups of three (6/8, 12/8 → duple; 9/8 → triple). Other signatures
  (5/4, additive ones) raise :class:`~echoic.tasks.base.TaskDataError`: none is in the task.
* **mode** (``major`` / ``minor``): which of the two keys of the key signature in force
  (``<fifths>``: the major key and its relative minor) fits the snippet's notes better — the
  Pearson correlation of the snippet's duration-weighted pitch-class histogram with the
  Krumhansl–Kessler major profile on the major tonic against the minor profile on the minor
  tonic (ties: major). A local estimate (two bars of a major movement can sound minor), not
  the movement's declared key; the notes are those of the task's audio
  (:func:`~echoic.tasks.sheet_scores.analyse_piece`, cached).

With the full build every split holds all four (metre, mode) combinations (docs/video_music.md).
:func:`prompt_text` words a label as a text prompt for the language-guided method. Needs the
``sheet`` extra (music21's corpus holds the scores).
"""

from __future__ import annotations

import csv
import functools
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from echoic.tasks.base import TRAIN_VALID_TEST, TaskDataError
from echoic.tasks.sheet_scores import Piece, analyse_piece, corpus_root

__all__ = [
    "LABEL_NAMES",
    "METRES",
    "MODES",
    "PROMPT_KINDS",
    "SnippetLabel",
    "corpus_file",
    "label_index",
    "label_snippet",
    "metre_of",
    "mode_of",
    "prompt_text",
    "read_signatures",
    "snippet_labels",
]

METRES = ("duple", "triple")
MODES = ("major", "minor")
LABEL_NAMES = tuple(f"{metre} {mode}" for metre in METRES for mode in MODES)
"""The label classes of the label-supervised space, in index order."""
PROMPT_KINDS = ("metre", "mode", "both")
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
"""Krumhansl & Kessler (1982) key profiles, tonic first."""
TEMPLATES = {
    "metre": ("music in {metre} metre", "a piece in {metre} time"),
    "mode": ("music in a {mode} key", "a piece in {mode}"),
    "both": ("music in a {mode} key and {metre} metre", "a {mode} piece in {metre} time"),
}


@dataclass(frozen=True)
class SnippetLabel:
    """One snippet's labels and where they come from."""

    metre: str
    mode: str
    time_signature: str
    fifths: int

    @property
    def name(self) -> str:
        return f"{self.metre} {self.mode}"


def label_index(metre: str, mode: str) -> int:
    """Index of ``(metre, mode)`` in :data:`LABEL_NAMES`."""
    return LABEL_NAMES.index(f"{metre} {mode}")


def metre_of(beats: int, beat_type: int) -> str:
    """``duple`` or ``triple`` of a time signature (module docstring)."""
    if beats in (2, 4):
        return "duple"
    if beats == 3:
        return "triple"
    if beat_type >= 8 and beats in (6, 12):
        return "duple"
    if beat_type >= 8 and beats == 9:
        return "triple"
    raise TaskDataError(
        f"time signature {beats}/{beat_type} is neither duple nor triple; expected 2, 3, 4 beats "
        "or compound 6, 9, 12. Fix: leave the piece out or extend metre_of."
    )


def mode_of(pitches: np.ndarray, weights: np.ndarray, fifths: int) -> str:
    """``major`` or ``minor``: the key of signature ``fifths`` whose Krumhansl–Kessler profile
    correlates better with the weighted pitch classes of MIDI ``pitches`` (module docstring)."""
    histogram = np.bincount(np.asarray(pitches) % 12, weights=weights, minlength=12)
    if histogram.sum() <= 0:
        raise TaskDataError("a snippet without sounding notes has no mode; expected notes")
    major_tonic = (7 * fifths) % 12
    minor_tonic = (major_tonic + 9) % 12
    major = np.corrcoef(histogram, np.roll(MAJOR_PROFILE, major_tonic))[0, 1]
    minor = np.corrcoef(histogram, np.roll(MINOR_PROFILE, minor_tonic))[0, 1]
    return "minor" if minor > major else "major"


def _score_xml(path: Path) -> bytes:
    if path.suffix != ".mxl":
        return path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        container = ET.fromstring(archive.read("META-INF/container.xml"))
        roots = [e.get("full-path") for e in container.iter() if e.get("full-path")]
        if not roots:
            raise TaskDataError(f"{path}: no rootfile in META-INF/container.xml; expected one")
        return archive.read(str(roots[0]))


def corpus_file(piece: str) -> Path:
    """The score file of a ``pairs.csv`` piece key (``mozart/k80/movement1``)."""
    for suffix in (".mxl", ".xml", ".musicxml"):
        path = corpus_root() / f"{piece}{suffix}"
        if path.is_file():
            return path
    raise TaskDataError(
        f"no score for piece {piece!r} in music21's corpus at {corpus_root()}; expected "
        f"{piece}.mxl / .xml. Fix: the task was built with another music21 version; rebuild it."
    )


@functools.cache
def read_signatures(piece: str) -> tuple[tuple[int, int, int], ...]:
    """``(beats, beat type, fifths)`` in force at each measure (by position) of the first part
    of ``piece``'s MusicXML."""
    path = corpus_file(piece)
    part = ET.fromstring(_score_xml(path)).find("part")
    if part is None:
        raise TaskDataError(f"{path}: no <part>; expected a partwise MusicXML score")
    out, time, fifths = [], None, 0
    for measure in part.findall("measure"):
        for element in measure.iter("time"):
            beats, beat_type = element.findtext("beats"), element.findtext("beat-type")
            if beats is None or beat_type is None or not (beats + beat_type).isdigit():
                raise TaskDataError(
                    f"{path}: time signature {beats}/{beat_type} in measure "
                    f"{measure.get('number')}; expected whole numbers"
                )
            time = (int(beats), int(beat_type))
        for element in measure.iter("key"):
            fifths = int(element.findtext("fifths") or 0)
        if time is None:
            raise TaskDataError(
                f"{path}: measure {measure.get('number')} before any time signature"
            )
        out.append((*time, fifths))
    return tuple(out)


def label_snippet(
    piece: Piece, signatures: tuple[tuple[int, int, int], ...], first: int, start: float, q: float
) -> SnippetLabel:
    """Labels of the snippet of ``piece`` from measure position ``first``, ``start`` quarters
    on, ``q`` quarters long."""
    if len(signatures) != len(piece.measures):
        raise TaskDataError(
            f"{piece.key}: {len(signatures)} measures in the MusicXML's first part, "
            f"{len(piece.measures)} in music21's analysis; expected the same"
        )
    beats, beat_type, fifths = signatures[first]
    notes = piece.notes_between(start, start + q)
    pitches = np.array([n.pitch for n in notes], dtype=np.int64)
    weights = np.array([n.end - n.onset for n in notes], dtype=np.float64)
    mode = mode_of(pitches, weights, fifths)
    return SnippetLabel(metre_of(beats, beat_type), mode, f"{beats}/{beat_type}", fifths)


def snippet_labels(task_dir: str | Path, split: str) -> list[SnippetLabel]:
    """Labels of the ``split`` snippets of a built ``sheet_snippets`` folder, in ``pairs.csv``
    order (that of :func:`~echoic.tasks.sheet_pairs.read_sheet_pairs`)."""
    if split not in TRAIN_VALID_TEST:
        raise TaskDataError(f"split must be one of {TRAIN_VALID_TEST}; found {split!r}")
    table = Path(task_dir) / "pairs.csv"
    if not table.is_file():
        raise TaskDataError(
            f"expected {table}; found none. Fix: echoic tasks build --tasks sheet_snippets --out DIR"
        )
    with table.open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split]
    out = []
    for row in rows:
        key = corpus_file(row["piece"]).relative_to(corpus_root()).as_posix()
        piece = analyse_piece(key)
        if isinstance(piece, str):
            raise TaskDataError(f"{row['clip']}: its piece is not usable ({piece})")
        out.append(
            label_snippet(
                piece,
                read_signatures(row["piece"]),
                int(row["first_measure"]),
                float(row["start_quarter"]),
                float(row["quarters"]),
            )
        )
    return out


def prompt_text(metre: str, mode: str, kind: str = "both", template: int = 0) -> str:
    """A text prompt describing ``metre`` and / or ``mode`` (``kind`` in :data:`PROMPT_KINDS`),
    worded by template ``template`` of that kind."""
    if metre not in METRES or mode not in MODES or kind not in PROMPT_KINDS:
        raise TaskDataError(
            f"expected metre in {METRES}, mode in {MODES}, kind in {PROMPT_KINDS}; found "
            f"{metre!r}, {mode!r}, {kind!r}"
        )
    templates = TEMPLATES[kind]
    return templates[template % len(templates)].format(metre=metre, mode=mode)
