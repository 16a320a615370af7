"""Syllabify a word's ARPAbet phones (CMUdict, no stress digits) by the maximal-onset rule.

Every vowel is the nucleus of one syllable. Consonants before a word's first vowel open its first
syllable and consonants after its last vowel close its last one. Between two vowels, the next
syllable takes the *longest* run of the consonants before it that is a legal English onset
(:data:`LEGAL_ONSETS`); the rest close the previous syllable. Syllables never cross a word edge.

Examples (checked by hand in the tests): ``seven`` S EH V AH N → ``S EH | V AH N``; ``extra``
EH K S T R AH → ``EH K | S T R AH`` (``S T R`` is a legal onset, ``K S T R`` is not); ``singer``
S IH NG ER → ``S IH NG | ER`` (NG never begins a syllable); ``zero`` Z IH R OW → ``Z IH | R OW``.

A word without a vowel (an interjection such as ``hmm``, ``shh``) is one syllable. The phones are
those of the pocketsphinx en-us model and its CMUdict (39 phones, stress removed); ``ER`` is a vowel.

The legal-onset set (written here from the English phonotactics textbooks describe, e.g.
Kahn 1976; Giegerich 1992) is deliberately conservative about clusters found only in loan words
(``SH L``, ``V L``, ``SH M``...) and about ``C + Y`` clusters that most American speakers do not
make (``T Y``, ``D Y``, ``N Y``, ``S Y``, ``L Y``: ``tune`` is T UW N in CMUdict):

* every single consonant except ``NG``;
* stop + liquid: ``P R``, ``P L``, ``B R``, ``B L``, ``T R``, ``D R``, ``K R``, ``K L``, ``G R``,
  ``G L``;
* fricative + liquid: ``F R``, ``F L``, ``TH R``, ``SH R``, ``S L``;
* consonant + ``W``: ``T W``, ``D W``, ``K W``, ``G W``, ``S W``, ``TH W``;
* ``S`` + stop, nasal or ``F``: ``S P``, ``S T``, ``S K``, ``S M``, ``S N``, ``S F``;
* consonant + ``Y`` (before ``UW``/``UH``/``ER``): ``P Y``, ``B Y``, ``F Y``, ``V Y``, ``K Y``,
  ``G Y``, ``M Y``, ``HH Y``;
* three consonants: ``S P R``, ``S P L``, ``S T R``, ``S K R``, ``S K W``, ``S K L``, ``S P Y``,
  ``S K Y``.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from echoic.errors import EchoicError

VOWELS = frozenset(
    "AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split()
)  # the 15 vowels of the CMUdict / pocketsphinx en-us phone set
CONSONANTS = frozenset(
    "B CH D DH F G HH JH K L M N NG P R S SH T TH V W Y Z ZH".split()
)  # its 24 consonants
PHONES = VOWELS | CONSONANTS

_CLUSTERS = """
P R, P L, B R, B L, T R, D R, K R, K L, G R, G L,
F R, F L, TH R, SH R, S L,
T W, D W, K W, G W, S W, TH W,
S P, S T, S K, S M, S N, S F,
P Y, B Y, F Y, V Y, K Y, G Y, M Y, HH Y,
S P R, S P L, S T R, S K R, S K W, S K L, S P Y, S K Y
"""
LEGAL_ONSETS: frozenset[tuple[str, ...]] = frozenset(
    {(c,) for c in CONSONANTS - {"NG"}}
    | {tuple(cluster.split()) for cluster in _CLUSTERS.replace("\n", " ").split(",")}
)
"""Consonant sequences that may begin a syllable (see the module docstring)."""


class PhoneError(EchoicError, ValueError):
    """A phone outside the CMUdict / pocketsphinx en-us phone set."""


def normalise_phone(phone: str) -> str:
    """``"ah0"`` / ``"AH1"`` / ``"ah"`` → ``"AH"`` (stress digits dropped, upper case)."""
    return phone.strip().upper().rstrip("012")


def syllabify(phones: Sequence[str]) -> list[tuple[int, int]]:
    """Split one word's phones into syllables by maximal onset.

    Returns ``(first, last + 1)`` index ranges into ``phones``, in order, covering every phone
    once. Phones may carry CMUdict stress digits (ignored). Raises :class:`PhoneError` for a phone
    not in :data:`PHONES`.
    """
    names = [normalise_phone(p) for p in phones]
    unknown = sorted({p for p in names if p not in PHONES})
    if unknown:
        raise PhoneError(
            f"unknown phones {unknown} in {list(phones)}; expected ARPAbet phones of CMUdict "
            f"(one of {sorted(PHONES)}, optional stress digit)"
        )
    if not names:
        return []
    nuclei = [i for i, p in enumerate(names) if p in VOWELS]
    if not nuclei:
        return [(0, len(names))]
    starts = [0]
    for previous, nucleus in pairwise(nuclei):
        cluster = names[previous + 1 : nucleus]
        onset = 0
        for size in range(len(cluster), 0, -1):
            if tuple(cluster[len(cluster) - size :]) in LEGAL_ONSETS:
                onset = size
                break
        starts.append(nucleus - onset)
    ends = [*starts[1:], len(names)]
    return list(zip(starts, ends, strict=True))


def syllable_phones(phones: Sequence[str]) -> list[tuple[str, ...]]:
    """The phones of each syllable of one word, e.g. ``seven`` → ``[("S","EH"), ("V","AH","N")]``."""
    names = [normalise_phone(p) for p in phones]
    return [tuple(names[a:b]) for a, b in syllabify(phones)]


def count_syllables(phones: Sequence[str]) -> int:
    """Number of syllables of one word (its vowel count, or 1 for a word without a vowel)."""
    return len(syllabify(phones))
