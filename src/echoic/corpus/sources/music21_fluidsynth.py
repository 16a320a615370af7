"""``music21``: real compositions from music21's bundled corpus, rendered through fluidsynth.

Pieces (Bach chorales, Palestrina and Monteverdi madrigals and masses, Trecento songs, Josquin,
Haydn / Mozart / Beethoven quartets, ...) are taken in a seeded shuffle; each part gets a random
melodic General MIDI program, each piece a random tempo (60-140 bpm) and half of them reverb, and
the first :data:`MAX_PIECE_S` seconds are rendered at 16 kHz with the FluidR3 GM soundfont (MIT).
The soundfont_instrument task's test soundfont (TimGM6mb) is never used. Needs the optional
``music21`` package (``pip install 'echoic[corpus]'``) and Debian ``fluidsynth`` +
``fluid-soundfont-gm``.

The draws of a piece (:func:`draw_recipe`: tempo, a program per part, reverb, peak, in that order)
and the render of a parsed score (:func:`render_score`) are also what ``music21_captions`` uses
for its longer, captioned renders; :func:`render_piece` composes them exactly as before, so this
source's files (echoic-tiny's corpus) do not change.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from echoic.corpus.base import SOURCES, CorpusContext, CorpusError, CorpusItem, CorpusSource
from echoic.tasks.base import TaskDataError
from echoic.tasks.soundfont import FLUIDR3, render_midi_mono

COMPOSERS = (
    "bach", "palestrina", "monteverdi", "trecento", "josquin", "beethoven", "mozart", "haydn",
    "handel", "joplin", "corelli", "schubert", "chopin", "weber", "verdi", "cpebach",
)  # fmt: skip
MELODIC_PROGRAMS = tuple(range(0, 80))  # pianos .. pipes (no synth pads, effects, percussion)
MAX_PIECE_S = 60.0
MAX_FILE_BYTES = 400_000  # skip very large scores (slow to parse)
RATE = 16000
DEFAULT_HOURS = 3.0
RENDER_TIMEOUT_S = 30  # a 60-s excerpt renders in about a second


def _rng(key: str, seed: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


@dataclass(frozen=True)
class Recipe:
    """The draws of one render: tempo (bpm), one melodic GM program per part, reverb on or off,
    and the peak the render is normalised to."""

    bpm: int
    programs: tuple[int, ...]
    reverb: bool
    peak: float


def draw_recipe(key: str, seed: int, parts: int) -> Recipe:
    """The seeded draws of piece ``key`` with ``parts`` parts, in the order :func:`render_piece`
    has always made them (tempo, a program per part, reverb, peak)."""
    rng = _rng(key, seed)
    bpm = int(rng.integers(60, 141))
    programs = tuple(int(rng.choice(MELODIC_PROGRAMS)) for _ in range(parts))
    reverb = bool(rng.random() < 0.5)
    peak = float(rng.uniform(0.3, 0.9))
    return Recipe(bpm, programs, reverb, peak)


def render_score(
    score: Any, key: str, recipe: Recipe, max_s: float = MAX_PIECE_S
) -> tuple[np.ndarray, int]:
    """Re-orchestrate a parsed score with ``recipe`` and render its first ``max_s`` seconds."""
    from music21 import instrument, stream, tempo

    bpm = recipe.bpm
    quarters = bpm / 60.0 * max_s
    # Rebuild each part from its notes and rests only (old instruments and tempi dropped), up to
    # the quarter-note offset of max_s at the new tempo, so fluidsynth renders no more.
    out = stream.Score()
    for part, program in zip(score.parts, recipe.programs, strict=True):
        new = stream.Part()
        inst = instrument.Instrument()
        inst.midiProgram = program
        new.insert(0, inst)
        new.insert(0, tempo.MetronomeMark(number=bpm))
        for element in part.flatten().notes:
            # grace notes (zero length) make some fluidsynth builds render forever
            if element.offset < quarters and element.quarterLength > 0:
                new.insert(element.offset, element)
        out.insert(0, new)
    with tempfile.TemporaryDirectory(prefix="echoic-music21-") as tmp:
        mid = Path(tmp) / "piece.mid"
        out.write("midi", fp=str(mid))
        midi = mid.read_bytes()
    try:
        mono = render_midi_mono(
            midi, str(FLUIDR3), RATE, key, reverb=recipe.reverb, timeout_s=RENDER_TIMEOUT_S
        )[: int(max_s * RATE)]
    except TaskDataError as exc:
        raise CorpusError(str(exc)) from exc
    top = float(np.max(np.abs(mono))) if mono.size else 0.0
    if top < 1e-4:
        raise CorpusError(f"{key}: rendered silence (peak {top:.1e})")
    return (mono * (recipe.peak / top)).astype(np.float32), RATE


def render_piece(path: str, key: str, seed: int) -> tuple[np.ndarray, int]:
    """Parse, re-orchestrate and render the first :data:`MAX_PIECE_S` s of one score."""
    from music21 import converter

    score: Any = converter.parse(path)
    return render_score(score, key, draw_recipe(key, seed, len(score.parts)))


@SOURCES.register("music21")
class Music21Fluidsynth(CorpusSource):
    name = "music21"
    licence = (
        "scores: music21 corpus (BSD-3; works public domain); audio rendered with FluidR3_GM (MIT)"
    )
    description = "real compositions (music21 corpus) rendered with random GM instruments"

    def unavailable(self, ctx: CorpusContext) -> str | None:
        try:
            import music21  # noqa: F401
        except ModuleNotFoundError:
            return "the music21 package is not installed: pip install 'echoic[corpus]'"
        if shutil.which("fluidsynth") is None or not FLUIDR3.is_file():
            return (
                "needs Debian fluidsynth and fluid-soundfont-gm (apt-get install ..., or make apt)"
            )
        return None

    def items(self, ctx: CorpusContext) -> Iterator[CorpusItem]:
        import music21
        from music21 import corpus

        root = Path(music21.__file__).parent / "corpus"
        paths: list[tuple[str, str]] = []
        for composer in COMPOSERS:
            for p in corpus.getComposer(composer):
                path = Path(str(p))
                if path.stat().st_size <= MAX_FILE_BYTES:
                    key = path.relative_to(root).as_posix().replace(" ", "_")
                    paths.append((key, str(path)))
        paths.sort()
        order = np.random.default_rng(ctx.seed).permutation(len(paths))
        hours = ctx.max_hours if ctx.max_hours is not None else DEFAULT_HOURS
        total: float = 0
        for i in order:
            if total >= hours * 3600:
                return
            key, score = paths[int(i)]
            stem = key.rsplit(".", 1)[0]
            yield CorpusItem(
                key=stem,
                render=functools.partial(render_piece, score, stem, ctx.seed),
                origin=f"music21:{key}",
            )
            total += MAX_PIECE_S  # upper bound per piece; the build's hours cap is exact
