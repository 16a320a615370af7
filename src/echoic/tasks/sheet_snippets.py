"""``sheet_snippets``: score snippets of the music21 corpus as audio + engraved image pairs.

Each snippet is a few consecutive measures of one piece, as (a) a 16 kHz mono clip rendered with
fluidsynth through FluidR3_GM, every part on the acoustic grand piano at a fixed
:data:`~echoic.tasks.sheet_audio.TEMPO_BPM` (:mod:`echoic.tasks.sheet_audio`), and (b) the same
measures engraved by verovio as one system, rasterised to a grayscale PNG
:data:`~echoic.tasks.sheet_scores.CANVAS_HEIGHT` pixels tall (:mod:`echoic.tasks.sheet_scores`).

* Pieces: the MusicXML scores (at most :data:`MAX_FILE_BYTES`, 2-:data:`MAX_STAVES` parts) of the
  composers in :data:`SPLIT_OF_COMPOSER`, plus :data:`CHORALES` Bach chorales drawn with a fixed
  seed. A piece whose parts have different numbers of measures, or whose measure onsets in
  verovio's timemap differ from music21's, is left out (so the image's measures are the audio's);
  the analysis of each file is cached (:func:`echoic.tasks.sheet_scores.analyse_piece`).
* Split by composer: ``test`` = Mozart and Haydn (string quartets and one piano sonata movement),
  ``valid`` = Robert and Clara Schumann, ``train`` = everyone else (Bach chorales, Beethoven
  quartet movements, Handel, Joplin, Weber, Verdi, C. P. E. Bach, ...; Corelli's and Schubert's
  scores are over the size limit). No composer is in two splits. Mozart's K. 156 finale is left
  out: it is in echoic-tiny's pretraining corpus.
* Snippets: a piece's measures are cut, from its first, into runs of consecutive measures of at
  most :data:`MAX_SNIPPET_QUARTERS` quarter notes (2 bars of 4/4, 4 of 2/4: at most 4.8 s) and at
  least :data:`MIN_SNIPPET_QUARTERS`; runs without a note are dropped; :data:`SNIPPETS_PER_PIECE`
  runs are kept per piece, evenly spaced over it.
* HEAR layout: scene task, label = piece key (``mozart/k80/movement1``), ``trainvaltest`` split
  by composer, so no test label is a train or valid label: ``echoic eval`` reads the folder, but
  its probes score 0 by construction and its ``retrieval`` protocol (test queries against train
  + valid) finds nothing relevant; :mod:`echoic.evaluate.sheet_retrieval` scores it. Extra files:
  ``images/<clip>.png`` and ``pairs.csv`` (clip, piece, composer, split, measures, timing,
  image), read by :mod:`echoic.tasks.sheet_pairs`.

Small mode: :data:`SMALL_PIECES`, three snippets each (for tests). Needs the ``sheet`` extra and
Debian ``fluidsynth`` + ``fluid-soundfont-gm``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from echoic.tasks.base import TASKS, TRAIN_VALID_TEST, Clip, TaskBuilder, TaskDataError, TaskInfo
from echoic.tasks.sheet_audio import SECONDS_PER_QUARTER, render_snippets
from echoic.tasks.sheet_scores import Piece, analyse_piece, corpus_root, engrave, require_modules
from echoic.tasks.soundfont import check_renderer

SPLIT_OF_COMPOSER = {
    "mozart": "test",
    "haydn": "test",
    "schumann_robert": "valid",
    "schumann_clara": "valid",
    "bach": "train",
    "beethoven": "train",
    "handel": "train",
    "joplin": "train",
    "corelli": "train",
    "schubert": "train",
    "weber": "train",
    "verdi": "train",
    "cpebach": "train",
    "lusitano": "train",
    "johnson_j_r": "train",
    "schoenberg": "train",
}
EXCLUDED = {"mozart/k156/movement4.mxl": "in echoic-tiny's pretraining corpus"}
MUSICXML = (".mxl", ".xml", ".musicxml")
MAX_FILE_BYTES = 100_000
MAX_STAVES = 4
CHORALES = 100
CHORALE_SEED = 2023
MAX_SNIPPET_QUARTERS = 8.0
MIN_SNIPPET_QUARTERS = 3.0
SNIPPETS_PER_PIECE = 12
CLIP_S = 5.0
SMALL_PIECES = (
    "bach/bwv66.6.mxl",
    "bach/bwv269.mxl",
    "schumann_robert/opus48no2.mxl",
    "mozart/k545/movement1_exposition.mxl",
    "mozart/k156/movement2.mxl",
)
SMALL_SNIPPETS = 3
PAIRS_HEADER = (
    "clip,piece,composer,split,first_measure,last_measure,measure_numbers,start_quarter,"
    "quarters,duration_s,staves,notes,image"
)


@dataclass(frozen=True)
class SnippetRecipe:
    """One snippet: measures ``first..last`` (0-based positions) of ``piece``, starting at
    ``start`` quarters and lasting ``quarters``; ``notes`` are ``(part, pitch, onset s, end s)``
    from the snippet's start."""

    piece: str
    path: str
    composer: str
    staves: int
    first: int
    last: int
    numbers: tuple[int, int]
    start: float
    quarters: float
    notes: tuple[tuple[int, int, float, float], ...]

    @property
    def duration_s(self) -> float:
        return self.quarters * SECONDS_PER_QUARTER


def candidate_keys() -> list[str]:
    """Corpus keys of the candidate pieces of every composer (chorales drawn), sorted."""
    root = corpus_root()
    keys: list[str] = []
    chorales: list[str] = []
    for composer in sorted(SPLIT_OF_COMPOSER):
        for path in sorted((root / composer).rglob("*")):
            if path.suffix not in MUSICXML or path.stat().st_size > MAX_FILE_BYTES:
                continue
            key = path.relative_to(root).as_posix()
            if key in EXCLUDED:
                continue
            if composer == "bach":
                if path.name.startswith("bwv"):
                    chorales.append(key)
            else:
                keys.append(key)
    order = np.random.default_rng(CHORALE_SEED).permutation(len(chorales))
    keys += [chorales[int(i)] for i in order[:CHORALES]]
    return sorted(keys)


def usable_piece(key: str) -> Piece | str:
    """The analysed piece (:func:`~echoic.tasks.sheet_scores.analyse_piece`), or why it is left
    out (that, or more than :data:`MAX_STAVES` staves)."""
    piece = analyse_piece(key)
    if isinstance(piece, Piece) and not 1 < piece.staves <= MAX_STAVES:
        return f"{key}: {piece.staves} staves; expected 2-{MAX_STAVES}"
    return piece


def measure_runs(piece: Piece) -> list[tuple[int, int]]:
    """Consecutive measures ``(first, last)`` (module docstring), from the first measure on; a
    run never holds a measure whose parts disagree on its length (``Measure.complete``)."""
    runs = []
    i, n = 0, len(piece.measures)
    while i < n:
        j, total = i, 0.0
        while (
            j < n
            and piece.measures[j].complete
            and total + piece.measures[j].quarters <= MAX_SNIPPET_QUARTERS + 1e-9
        ):
            total += piece.measures[j].quarters
            j += 1
        if j == i:  # a measure longer than a snippet, or incomplete: skipped
            i += 1
            continue
        if total >= MIN_SNIPPET_QUARTERS - 1e-9:
            start = piece.measures[i].offset
            if piece.notes_between(start, start + total):
                runs.append((i, j - 1))
        i = j
    return runs


def evenly_spaced(runs: Sequence[tuple[int, int]], k: int) -> list[tuple[int, int]]:
    """``k`` of ``runs`` spread evenly from the first to the last (all when fewer)."""
    if len(runs) <= k:
        return list(runs)
    picks = np.unique(np.round(np.linspace(0, len(runs) - 1, k)).astype(int))
    return [runs[int(i)] for i in picks]


def snippet_recipe(piece: Piece, first: int, last: int) -> SnippetRecipe:
    start = piece.measures[first].offset
    quarters = sum(m.quarters for m in piece.measures[first : last + 1])
    notes = tuple(
        (
            n.part,
            n.pitch,
            (n.onset - start) * SECONDS_PER_QUARTER,
            (n.end - start) * SECONDS_PER_QUARTER,
        )
        for n in piece.notes_between(start, start + quarters)
    )
    numbers = (piece.measures[first].number, piece.measures[last].number)
    return SnippetRecipe(
        piece.key, piece.path, piece.composer, piece.staves, first, last, numbers, start,
        quarters, notes,
    )  # fmt: skip


def clip_stem(split: str, key: str, first: int, last: int) -> str:
    piece = key.rsplit(".", 1)[0].replace("/", "__").replace(".", "_").replace(" ", "_")
    return f"{split}_{piece}_m{first:03d}-{last:03d}"


@TASKS.register("sheet_snippets")
class SheetSnippetsTask(TaskBuilder):
    """Audio–sheet snippet pairs of the music21 corpus (module docstring)."""

    info = TaskInfo(
        name="sheet_snippets",
        version="v1.0.0",
        embedding_type="scene",
        prediction_type="multiclass",
        split_mode="trainvaltest",
        sample_duration=CLIP_S,
        evaluation=("top1_acc", "mAP"),
        source="music21 corpus scores: measures rendered with fluidsynth (FluidR3_GM piano) and "
        "engraved with verovio (images/, pairs.csv)",
        licence="scores: music21 corpus (BSD-3 software; works public domain, encodings licensed "
        "for use by music21); audio: FluidR3_GM (MIT); engraving: verovio (LGPL-3)",
    )

    def __init__(self) -> None:
        self.skipped: dict[str, str] = {}
        """Pieces left out by the last :meth:`plan`, with the reason."""

    def check_data(self, data_dir: Path) -> None:
        require_modules()
        check_renderer()

    def plan(self, data_dir: Path, mode: str) -> list[Clip]:
        require_modules()
        keys = list(SMALL_PIECES) if mode == "small" else candidate_keys()
        self.skipped = {}
        clips = []
        for key in keys:
            piece = usable_piece(key)
            if isinstance(piece, str):
                self.skipped[key] = piece
                continue
            split = SPLIT_OF_COMPOSER[piece.composer]
            k = SMALL_SNIPPETS if mode == "small" else SNIPPETS_PER_PIECE
            for first, last in evenly_spaced(measure_runs(piece), k):
                recipe = snippet_recipe(piece, first, last)
                clips.append(
                    Clip(
                        split,
                        clip_stem(split, key, first, last) + ".wav",
                        (key.rsplit(".", 1)[0],),
                        sources=(f"music21:{key}",),
                        group=key,
                        recipe=recipe,
                    )
                )
        if mode == "small" and self.skipped:
            raise TaskDataError(f"small-mode pieces not usable here: {self.skipped}")
        order = {s: i for i, s in enumerate(TRAIN_VALID_TEST)}
        return sorted(clips, key=lambda c: (order[c.split], c.name))

    def render(
        self, clips: Sequence[Clip], data_dir: Path, sample_rate: int
    ) -> Iterator[tuple[Clip, np.ndarray]]:
        by_piece: dict[str, list[Clip]] = {}
        for clip in clips:
            by_piece.setdefault(clip.recipe.piece, []).append(clip)
        for members in by_piece.values():
            snippets = [(c.recipe.duration_s, c.recipe.notes) for c in members]
            audio = render_snippets(snippets, sample_rate, CLIP_S)
            yield from zip(members, audio, strict=True)

    def extra_files(self, clips: Sequence[Clip]) -> dict[str, bytes]:
        """``images/<clip>.png`` of every clip and ``pairs.csv`` (module docstring)."""
        files: dict[str, bytes] = {}
        by_piece: dict[str, list[Clip]] = {}
        for clip in clips:
            by_piece.setdefault(clip.recipe.piece, []).append(clip)
        rows = [PAIRS_HEADER]
        for members in by_piece.values():
            ranges = [(c.recipe.first, c.recipe.last) for c in members]
            for clip, png in zip(members, engrave(members[0].recipe.path, ranges), strict=True):
                image = f"images/{clip.name.rsplit('.', 1)[0]}.png"
                files[image] = png
                r = clip.recipe
                rows.append(
                    f"{clip.name},{clip.labels[0]},{r.composer},{clip.split},{r.first},{r.last},"
                    f"{r.numbers[0]}-{r.numbers[1]},{r.start:.6g},{r.quarters:.6g},"
                    f"{r.duration_s:.6g},{r.staves},{len(r.notes)},{image}"
                )
        header, body = rows[0], sorted(rows[1:])
        files["pairs.csv"] = ("\n".join([header, *body]) + "\n").encode()
        return files
