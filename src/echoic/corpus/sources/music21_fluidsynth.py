"""``music21``: real compositions from music21's bundled corpus, rendered through fluidsynth.

Pieces (Bach chorales, Palestrina and Monteverdi madrigals and masses, Trecento songs, Josquin,
Haydn / Mozart / Beethoven quartets, ...) are taken in a seeded shuffle; each part gets a random
melodic General MIDI program, each piece a random tempo (60-140 bpm) and half of them reverb, and
the first :data:`MAX_PIECE_S` seconds are rendered at 16 kHz with the FluidR3 GM soundfont (MIT).
The soundfont_instrument task's test soundfont (TimGM6mb) is never used. Needs the optional
``music21`` package (``pip install 'echoic[corpus]'``) and Debian ``fluidsynth`` +
``fluid-soundfont-gm``.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import tempfile
from collections.abc import Iterator
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


def render_piece(path: str, key: str, seed: int) -> tuple[np.ndarray, int]:
    """Parse, re-orchestrate and render the first :data:`MAX_PIECE_S` s of one score."""
    from music21 import converter, instrument, stream, tempo

    rng = _rng(key, seed)
    score: Any = converter.parse(path)
    bpm = int(rng.integers(60, 141))
    quarters = bpm / 60.0 * MAX_PIECE_S
    # Rebuild each part from its notes and rests only (old instruments and tempi dropped), up to
    # the quarter-note offset of MAX_PIECE_S at the new tempo, so fluidsynth renders no more.
    out = stream.Score()
    for part in score.parts:
        new = stream.Part()
        inst = instrument.Instrument()
        inst.midiProgram = int(rng.choice(MELODIC_PROGRAMS))
        new.insert(0, inst)
        new.insert(0, tempo.MetronomeMark(number=bpm))
        for element in part.flatten().notes:
            # grace notes (zero length) make some fluidsynth builds render forever
            if element.offset < quarters and element.quarterLength > 0:
                new.insert(element.offset, element)
        out.insert(0, new)
    score = out
    reverb = bool(rng.random() < 0.5)
    peak = float(rng.uniform(0.3, 0.9))
    with tempfile.TemporaryDirectory(prefix="echoic-music21-") as tmp:
        mid = Path(tmp) / "piece.mid"
        score.write("midi", fp=str(mid))
        midi = mid.read_bytes()
    try:
        mono = render_midi_mono(
            midi, str(FLUIDR3), RATE, key, reverb=reverb, timeout_s=RENDER_TIMEOUT_S
        )[: int(MAX_PIECE_S * RATE)]
    except TaskDataError as exc:
        raise CorpusError(str(exc)) from exc
    top = float(np.max(np.abs(mono))) if mono.size else 0.0
    if top < 1e-4:
        raise CorpusError(f"{key}: rendered silence (peak {top:.1e})")
    return (mono * (peak / top)).astype(np.float32), RATE


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
