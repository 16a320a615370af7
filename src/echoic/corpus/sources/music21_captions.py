"""``music21_captions``: long renders of music21-corpus scores with captions from their recipe.

The long-form music of the audio–text objectives (``collap``: issue 23's "CoLLAP vs mean-pooled
chunks on 60-s+ renders"). Each piece of music21's bundled corpus is orchestrated and rendered as
the ``music21`` source does it (:func:`~.music21_fluidsynth.draw_recipe`: a tempo of 60-140 bpm,
a random melodic General MIDI program per part, reverb on half of the pieces;
:func:`~.music21_fluidsynth.render_score`: FluidR3 through fluidsynth at 16 kHz), but

* up to :attr:`Music21Captions.render_s` seconds (90) instead of 60, and a piece that lasts less
  than :attr:`Music21Captions.min_s` seconds (60) at its drawn tempo is left out, so every clip
  is long-form;
* the draws are keyed ``music21_captions/<piece>``, not ``<piece>``: a piece that is also in a
  ``music21`` build (echoic-tiny's corpus holds 180) sounds with other instruments, another
  tempo and room here;
* one file per piece (a piece in two formats, ``.mxl`` and ``.krn``, is one clip; the
  ``.rntxt`` harmonic analyses are not scores and are left out);
* pieces come composer by composer in turn (each composer's scores in a seeded shuffle), so a
  small build already holds every composer, not mostly Palestrina (1,318 of the ~2,000 scores).

Captions are composed from the recipe and the score (``caption_kind = generated``, ``en``), three
per clip (:func:`piece_captions`)::

    "music by Palestrina for two violins, a flute and an oboe, slow tempo (72 bpm), in a reverberant hall"
    "a slow piece in G major in 3/2 time for four parts, in a reverberant hall"
    "two violins, a flute and an oboe playing a slow piece by Palestrina"

composer: the corpus folder's composer (:data:`COMPOSER_NAMES`); ensemble: the General MIDI names
of the parts' programs (:data:`GM_NAMES`), counted ("two violins"); tempo word: ``slow`` below 80
bpm, ``moderate`` below 110, else ``fast`` (:func:`tempo_word`), with the number; room: ``in a
reverberant hall`` (fluidsynth's reverb on) or ``dry``; key and mode: music21's key finding on the
score (``analyze('key')``, Krumhansl–Schmuckler); metre: the score's first time signature.

Held-out split (``heldout.csv``, :data:`HELDOUT_FRACTION` of the groups by the seeded hash of
:func:`echoic.data.captions.in_heldout`): the pieces of the four big folders
(:data:`PIECE_GROUPED`: Bach, Palestrina, Monteverdi, Trecento) are held out piece by piece; every
other composer is one group, held out whole (at 0.25: Joplin and C. P. E. Bach, whose names then
never occur in a training caption). Licence as ``music21``: the scores are public-domain works in
music21's BSD-3 corpus, the soundfont MIT.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from echoic.corpus.base import SOURCES, CorpusContext, CorpusItem, CorpusSource
from echoic.corpus.sources.music21_fluidsynth import (
    COMPOSERS,
    DEFAULT_HOURS,
    MAX_FILE_BYTES,
    Music21Fluidsynth,
    Recipe,
    _rng,
    draw_recipe,
    render_score,
)
from echoic.data.captions import Caption
from echoic.tasks.sheet_snippets import SPLIT_OF_COMPOSER

__all__ = [
    "COMPOSER_NAMES",
    "GM_NAMES",
    "HELDOUT_FRACTION",
    "PIECE_GROUPED",
    "Music21Captions",
    "ensemble",
    "piece_captions",
    "tempo_word",
]

SOURCE = "music21_captions"
"""Prefix of the draws' keys and of the held-out groups (a subclass holds out the same pieces)."""
HELDOUT_FRACTION = 0.25
SCORE_FORMATS = (".mxl", ".xml", ".krn", ".abc")
"""Score files taken, in order of preference when one piece comes in several (RomanText
``.rntxt`` files are harmonic analyses, not scores: left out)."""
PIECE_GROUPED = ("bach", "palestrina", "monteverdi", "trecento")
"""Composers with hundreds of scores: held out piece by piece; every other composer whole."""
COMPOSER_NAMES = {
    "bach": "J. S. Bach", "palestrina": "Palestrina", "monteverdi": "Monteverdi",
    "trecento": "a Trecento composer", "josquin": "Josquin des Prez", "beethoven": "Beethoven",
    "mozart": "Mozart", "haydn": "Haydn", "handel": "Handel", "joplin": "Scott Joplin",
    "corelli": "Corelli", "schubert": "Schubert", "chopin": "Chopin", "weber": "Weber",
    "verdi": "Verdi", "cpebach": "C. P. E. Bach",
}  # fmt: skip
GM_NAMES = (
    "acoustic grand piano", "bright acoustic piano", "electric grand piano", "honky-tonk piano",
    "electric piano", "electric piano", "harpsichord", "clavinet",
    "celesta", "glockenspiel", "music box", "vibraphone",
    "marimba", "xylophone", "tubular bells", "dulcimer",
    "drawbar organ", "percussive organ", "rock organ", "church organ",
    "reed organ", "accordion", "harmonica", "tango accordion",
    "nylon-string guitar", "steel-string guitar", "jazz guitar", "clean electric guitar",
    "muted electric guitar", "overdriven guitar", "distortion guitar", "guitar harmonics",
    "acoustic bass", "fingered electric bass", "picked electric bass", "fretless bass",
    "slap bass", "slap bass", "synth bass", "synth bass",
    "violin", "viola", "cello", "contrabass",
    "tremolo string section", "pizzicato string section", "orchestral harp", "timpani",
    "string ensemble", "string ensemble", "synth string section", "synth string section",
    "choir", "voice", "synth voice", "orchestra hit",
    "trumpet", "trombone", "tuba", "muted trumpet",
    "French horn", "brass section", "synth brass", "synth brass",
    "soprano sax", "alto sax", "tenor sax", "baritone sax",
    "oboe", "English horn", "bassoon", "clarinet",
    "piccolo", "flute", "recorder", "pan flute",
    "blown bottle", "shakuhachi", "whistle", "ocarina",
)  # fmt: skip
"""General MIDI level-1 names of the melodic programs 0-79 (the ``music21`` source's range) in
plain words: numbered variants ("Electric Piano 1 / 2") share a name."""
_MASS_NOUNS = ("tubular bells", "timpani", "guitar harmonics")  # no article, no plural
_NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
            "eleven", "twelve")  # fmt: skip


def _rank(key: str) -> int:
    return SCORE_FORMATS.index("." + key.rsplit(".", 1)[1])


def tempo_word(bpm: int) -> str:
    """``slow`` (< 80 bpm), ``moderate`` (< 110) or ``fast``."""
    return "slow" if bpm < 80 else "moderate" if bpm < 110 else "fast"


def _number(n: int) -> str:
    return _NUMBERS[n] if n < len(_NUMBERS) else str(n)


def _article(words: str) -> str:
    return f"{'an' if words[0].lower() in 'aeiou' else 'a'} {words}"


def _counted(name: str, count: int) -> str:
    """``violin`` × 1 → ``a violin``, × 2 → ``two violins``; ``timpani`` × 2 → ``two timpani
    parts``."""
    if name in _MASS_NOUNS:
        return name if count == 1 else f"{_number(count)} {name} parts"
    if count == 1:
        return _article(name)
    return f"{_number(count)} {name}{'es' if name.endswith(('s', 'x', 'ch', 'sh')) else 's'}"


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def ensemble(programs: Sequence[int]) -> str:
    """The parts' instruments in words, in order of first appearance, counted:
    ``(40, 73, 40, 68)`` → ``"two violins, a flute and an oboe"``."""
    counts: dict[str, int] = {}
    for program in programs:
        name = GM_NAMES[program]
        counts[name] = counts.get(name, 0) + 1
    return _join([_counted(name, count) for name, count in counts.items()])


def _key_words(tonic: str, mode: str) -> str:
    """music21's tonic name and mode in words: ``("B-", "minor")`` → ``"B-flat minor"``."""
    words = tonic[0] + "".join("-sharp" if a == "#" else "-flat" for a in tonic[1:])
    return f"{words} {mode}"


def piece_captions(
    composer: str, recipe: Recipe, key: str | None = None, metre: str | None = None
) -> tuple[Caption, ...]:
    """The three generated captions of one render (module docstring). ``composer``: a corpus
    folder (:data:`COMPOSER_NAMES`); ``key``: e.g. ``"G major"``; ``metre``: e.g. ``"3/4"``."""
    who = COMPOSER_NAMES.get(composer, composer)
    players = ensemble(recipe.programs)
    speed = tempo_word(recipe.bpm)
    room = "in a reverberant hall" if recipe.reverb else "dry"
    parts = len(recipe.programs)
    described = " ".join(
        w
        for w in (
            _article(f"{speed} piece"),
            f"in {key}" if key else "",
            f"in {metre} time" if metre else "",
            f"for {_number(parts)} part{'s' if parts > 1 else ''},",
            room,
        )
        if w
    )
    texts = (
        f"music by {who} for {players}, {speed} tempo ({recipe.bpm} bpm), {room}",
        described,
        f"{players} playing {_article(speed)} piece by {who}",
    )
    return tuple(Caption(t, "en", "generated") for t in texts)


def _analysis(score: Any) -> tuple[str | None, str | None]:
    """(key in words, first time signature) of a parsed score; None where music21 finds none."""
    from music21 import meter

    found: str | None = None
    try:
        k = score.analyze("key")
        found = _key_words(k.tonic.name, k.mode) if k.mode in ("major", "minor") else None
    except Exception:  # music21's analysis raises assorted errors on odd scores
        found = None
    signature = score.recurse().getElementsByClass(meter.TimeSignature).first()
    return found, (signature.ratioString if signature is not None else None)


def _render(path: str, key: str, recipe: Recipe, max_s: float) -> tuple[np.ndarray, int]:
    from music21 import converter

    return render_score(converter.parse(path), key, recipe, max_s)


@SOURCES.register(SOURCE)
class Music21Captions(CorpusSource):
    name = SOURCE
    licence = Music21Fluidsynth.licence
    description = (
        "music21 scores rendered 60-90 s with random GM instruments, captioned from the recipe "
        "and the score (composer, instruments, tempo, room, key, metre)"
    )
    heldout_fraction: ClassVar[float] = HELDOUT_FRACTION
    # the sheet_snippets task's valid and test composers (the same scores) are never trained on
    composers: ClassVar[tuple[str, ...]] = tuple(
        c for c in COMPOSERS if SPLIT_OF_COMPOSER.get(c, "train") == "train"
    )
    render_s: ClassVar[float] = 90.0
    min_s: ClassVar[float] = 60.0

    def unavailable(self, ctx: CorpusContext) -> str | None:
        return Music21Fluidsynth().unavailable(ctx)

    def pieces(self, ctx: CorpusContext) -> list[tuple[str, str, str]]:
        """``(composer, corpus key, path)`` of every score, composers in turn (each composer's
        scores in a shuffle seeded by ``ctx.seed`` and the composer)."""
        import music21
        from music21 import corpus

        root = Path(music21.__file__).parent / "corpus"
        queues: list[list[tuple[str, str, str]]] = []
        for composer in self.composers:
            by_stem: dict[str, tuple[str, str]] = {}
            for p in corpus.getComposer(composer):
                path = Path(str(p))
                if path.suffix not in SCORE_FORMATS or path.stat().st_size > MAX_FILE_BYTES:
                    continue
                key = path.relative_to(root).as_posix().replace(" ", "_")
                stem = key.rsplit(".", 1)[0]
                kept = by_stem.get(stem)
                if kept is None or _rank(key) < _rank(kept[0]):
                    by_stem[stem] = (key, str(path))
            found = sorted(by_stem.values())
            order = _rng(f"{SOURCE}/{composer}", ctx.seed).permutation(len(found))
            queues.append([(composer, *found[int(i)]) for i in order])
        return [q[i] for i in range(max(map(len, queues), default=0)) for q in queues if i < len(q)]

    def group(self, composer: str, stem: str) -> str:
        """The held-out group: the piece for :data:`PIECE_GROUPED` composers, else the composer."""
        if composer in PIECE_GROUPED:
            return f"{SOURCE}/{stem}"
        return f"{SOURCE}/composer/{composer}"

    def items(self, ctx: CorpusContext) -> Iterator[CorpusItem]:
        from music21 import converter

        hours = ctx.max_hours if ctx.max_hours is not None else DEFAULT_HOURS
        total = 0.0
        for composer, key, path in self.pieces(ctx):
            if total >= hours * 3600:
                return
            stem = key.rsplit(".", 1)[0]
            try:
                score: Any = converter.parse(path)
                parts = len(score.parts)  # an Opus (several scores in one file) has none
            except Exception:  # unreadable or not one score: not a clip of this source
                continue
            if parts == 0:
                continue
            recipe = draw_recipe(f"{SOURCE}/{stem}", ctx.seed, parts)
            seconds = float(score.highestTime) * 60.0 / recipe.bpm
            if seconds < self.min_s:
                continue
            tonality, metre = _analysis(score)
            yield CorpusItem(
                key=stem,
                render=functools.partial(_render, path, stem, recipe, self.render_s),
                origin=f"music21:{key}",
                captions=piece_captions(composer, recipe, tonality, metre),
                group=self.group(composer, stem),
                category="music",
            )
            total += min(seconds, self.render_s)  # about; the build's hours cap is exact
