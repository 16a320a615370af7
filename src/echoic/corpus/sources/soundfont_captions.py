"""``soundfont_captions``: the ``soundfont_train`` notes with captions generated from their recipe.

Each clip of the ``soundfont_instrument`` train split is one General MIDI note rendered from
FluidR3 (program, MIDI pitch and velocity are in its file name, ``train_0000_p000_n045_v113.wav``),
so its caption is composed, not written (``caption_kind = generated``)::

    "an acoustic grand piano playing A2, fortissimo"
    "a single note on an acoustic grand piano (keyboard family)"

Pitch names use MIDI 60 = C4 with sharps; the dynamic is the marking nearest to the velocity on
the scale pp 32, p 48, mp 64, mf 80, f 96, ff 112, fff 127. Use it *instead of*
``soundfont_train`` (the same files). The captions name the train split's instruments, so a
"zero-shot" score on ``soundfont_instrument`` after training on them is a cross-soundfont
transfer score (test notes come from TimGM6mb), not zero-shot; the 11 validation programs never
appear in these captions.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

from echoic.corpus.base import SOURCES, CorpusContext, CorpusError, CorpusItem
from echoic.corpus.sources.task_train import SoundfontTrain
from echoic.data.captions import Caption
from echoic.tasks.soundfont import PROGRAMS

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
DYNAMICS = ((32, "pianissimo"), (48, "piano"), (64, "mezzo-piano"), (80, "mezzo-forte"),
            (96, "forte"), (112, "fortissimo"), (127, "fortississimo"))  # fmt: skip
NOTE_FILE = re.compile(r"_p(\d{3})_n(\d{3})_v(\d{3})\.wav$")
_PROGRAM = {p.number: p for p in PROGRAMS}


def pitch_name(midi: int) -> str:
    """MIDI note number → scientific pitch name (60 → ``C4``, 69 → ``A4``, 61 → ``C#4``)."""
    return f"{NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


def dynamic(velocity: int) -> str:
    """The dynamic marking nearest to a MIDI velocity (ties go to the softer marking)."""
    return min(DYNAMICS, key=lambda d: (abs(d[0] - velocity), d[0]))[1]


def _with_article(words: str) -> str:
    return f"{'an' if words[0] in 'aeiou' else 'a'} {words}"


def note_captions(program: int, pitch: int, velocity: int) -> tuple[Caption, ...]:
    """The generated captions of one rendered note."""
    if program not in _PROGRAM:
        raise CorpusError(f"GM program {program} is not one of the soundfont task's programs")
    spec = _PROGRAM[program]
    instrument = _with_article(spec.name.replace("_", " "))
    family = spec.family.replace("_", " ")
    return (
        Caption(
            f"{instrument} playing {pitch_name(pitch)}, {dynamic(velocity)}", "en", "generated"
        ),
        Caption(f"a single note on {instrument} ({family} family)", "en", "generated"),
    )


@SOURCES.register("soundfont_captions")
class SoundfontCaptions(SoundfontTrain):
    name = "soundfont_captions"
    description = (
        "soundfont_train's FluidR3 notes with generated captions (instrument, pitch, dynamic); "
        "use instead of soundfont_train"
    )

    def items(self, ctx: CorpusContext) -> Iterator[CorpusItem]:
        for item in super().items(ctx):
            found = NOTE_FILE.search(item.key)
            if found is None:
                raise CorpusError(
                    f"{item.key}: expected a soundfont task file name like "
                    f"train_0000_p000_n045_v113.wav (program, pitch, velocity)"
                )
            program, pitch, velocity = (int(g) for g in found.groups())
            yield replace(item, captions=note_captions(program, pitch, velocity))
