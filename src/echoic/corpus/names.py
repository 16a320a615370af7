"""Template captions from file and folder names: the name-cleaning rule.

``template_caption("LRFrogsInPondDuringStormLACut")`` -> ``"frogs in pond during storm"``;
``template_caption("bd_boom", abbreviations=...)`` -> ``"bass drum boom"``. The rule, in order:

1. Each name (context folders first, then the file stem without extension) is split into words at
   ``_ - . +``, spaces, camelCase boundaries (``fooBar``, ``LRFactory`` -> ``LR Factory``) and
   letter/digit boundaries (``snap2`` -> ``snap 2``).
2. Words are lower-cased. A whole name found in ``names`` (a pack's dictionary of opaque names,
   e.g. warzone's ``flmthrow`` -> ``flamethrower``) is replaced first.
3. Each word found in the abbreviation map (:data:`ABBREVIATIONS`, updated by the pack's own) is
   replaced by its expansion; an empty expansion drops the word (recording-library tags such as
   ``LA``/``LR``, ``cut``, ``sfx``).
4. Numbers and single letters are dropped (take numbers, variants ``a``/``b``, note names).
5. A word equal to the one before it is dropped; a context word already in the stem's words is
   dropped. An empty result means no caption (the file is skipped).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

__all__ = ["ABBREVIATIONS", "NOISE_WORDS", "split_name", "template_caption"]

ABBREVIATIONS: dict[str, str] = {
    "ambi": "ambient",
    "amb": "ambience",
    "bd": "bass drum",
    "sn": "snare",
    "elec": "electronic",
    "perc": "percussion",
    "guit": "guitar",
    "fx": "effect",
    "sfx": "",
    "snd": "",
    "sound": "",
    "sounds": "",
    "la": "",
    "lr": "",
    "cut": "",
    "short": "",
    "hi": "high",
    "lo": "low",
    "med": "medium",
    "lrg": "large",
    "sml": "small",
    "expl": "explosion",
    "explons": "explosion",
    "interfce": "interface",
    "dnb": "drum and bass",
    "xylofon": "xylophone",
    "son": "sound",
}
"""Word -> expansion shared by every pack ("" drops the word)."""

NOISE_WORDS = frozenset(w for w, e in ABBREVIATIONS.items() if not e)

_CAMEL = re.compile(
    r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])"
)
_SEPARATORS = re.compile(r"[\s_\-.+]+")


def split_name(name: str) -> list[str]:
    """Step 1: the lower-cased words of one file or folder name."""
    words: list[str] = []
    for chunk in _SEPARATORS.split(name):
        words.extend(w.lower() for w in _CAMEL.split(chunk) if w)
    return words


def _clean(name: str, names: Mapping[str, str], abbreviations: Mapping[str, str]) -> list[str]:
    key = name.lower()
    if key in names:
        return names[key].split()
    words: list[str] = []
    for word in split_name(name):
        expanded = abbreviations.get(word, word)
        for w in expanded.split():
            if w.isdigit() or len(w) < 2:
                continue
            if not words or words[-1] != w:
                words.append(w)
    return words


def template_caption(
    stem: str,
    context: Sequence[str] = (),
    abbreviations: Mapping[str, str] | None = None,
    names: Mapping[str, str] | None = None,
) -> str:
    """The template caption of a file ``stem`` (no extension) under ``context`` folders."""
    table = {**ABBREVIATIONS, **(abbreviations or {})}
    lookup = {k.lower(): v for k, v in (names or {}).items()}
    stem_words = _clean(stem, lookup, table)
    context_words = [w for c in context for w in _clean(c, lookup, table) if w not in stem_words]
    out: list[str] = []
    for word in [*context_words, *stem_words]:
        if not out or out[-1] != word:
            out.append(word)
    return " ".join(out)
