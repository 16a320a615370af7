"""Forced alignment of speech with pocketsphinx, and syllables from the aligned phones.

pocketsphinx (PyPI ``pocketsphinx`` 5.x, the optional ``syllables`` extra) ships a US English
acoustic model (16 kHz, 10 ms frames), CMUdict and a trigram language model, so everything here runs
offline. A clip is aligned in two passes as its documentation prescribes: a word-level pass over
the transcript (optional silences between words, alternative pronunciations chosen by the decoder),
then a phone-level pass. Without a transcript, the language-model search decodes one first.

Times are frame indices x 10 ms; a phone's end is its start plus its duration. Silence and noise
"words" (``<sil>``, ``[NOISE]``...) are dropped. Syllables come from each word's *aligned* phones
(the pronunciation the aligner chose) by :func:`echoic.tasks.syllabify.syllabify`, so a syllable's
start and end are phone boundaries and no syllable crosses a word edge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from echoic.errors import EchoicError
from echoic.tasks.syllabify import PHONES, syllabify

SAMPLE_RATE = 16000
"""The rate of pocketsphinx's en-us acoustic model: audio is given to :class:`Aligner` at 16 kHz."""
PAD_S = 0.1
"""Silence added at both ends before alignment: FSDD's recordings are cut tight to the word, and
without room for the model's silence states 2-4 % of them found no alignment (0 of 300 with it)."""
ALIGN_SETTINGS: dict[str, Any] = {"pbeam": 1e-80, "wbeam": 1e-60, "bestpath": False}
"""The alignment decoder's settings. Phone and word beams wider than pocketsphinx's defaults (1e-48,
7e-29): with the defaults 7 of 300 FSDD clips (every 10th take) found no alignment, with these 0.
No best-path rescoring of the word pass: with it, a transcript that starts with a one-phone word
("i", "a", "oh") fails the phone pass (20 of 351 LibriSpeech utterances did)."""
INSTALL_HINT = "pip install 'echoic[syllables]' (or: pip install pocketsphinx==5.1.1)"


class AlignmentError(EchoicError):
    """pocketsphinx is missing, or a transcript cannot be aligned (a word not in its dictionary)."""


@dataclass(frozen=True)
class Phone:
    label: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class Word:
    """One aligned word: its text (pronunciation variant suffix removed) and its phones."""

    text: str
    phones: tuple[Phone, ...]

    @property
    def start_ms(self) -> int:
        return self.phones[0].start_ms

    @property
    def end_ms(self) -> int:
        return self.phones[-1].end_ms


@dataclass(frozen=True)
class Syllable:
    """One syllable: its phones (space-joined), the word it belongs to, its span in ms."""

    phones: str
    word: str
    start_ms: int
    end_ms: int


def word_syllables(word: Word) -> list[Syllable]:
    """The syllables of one aligned word (maximal onset over its aligned phones)."""
    labels = [p.label for p in word.phones]
    return [
        Syllable(
            " ".join(labels[a:b]), word.text, word.phones[a].start_ms, word.phones[b - 1].end_ms
        )
        for a, b in syllabify(labels)
    ]


def syllables(words: list[Word]) -> list[Syllable]:
    """Every syllable of an aligned clip, in time order."""
    return [s for w in words for s in word_syllables(w)]


def normalise_transcript(text: str) -> str:
    """Lower case, apostrophes kept, every other non-letter a space (pocketsphinx's dictionary
    spelling): ``"He turned sharply, and faced Gregson."`` → ``"he turned sharply and faced
    gregson"``."""
    return " ".join(re.sub(r"[^a-z']+", " ", text.lower()).split())


def _word_text(name: str) -> str:
    return re.sub(r"\(\d+\)$", "", name)


def _pcm16(audio: np.ndarray) -> bytes:
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"audio must be mono (S,) at {SAMPLE_RATE} Hz; found shape {x.shape}")
    return np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def pocketsphinx_version() -> str:
    """The installed pocketsphinx version (raises :class:`AlignmentError` when it is missing)."""
    from importlib import metadata

    try:
        return metadata.version("pocketsphinx")
    except metadata.PackageNotFoundError as e:
        raise AlignmentError(
            f"syllable alignment needs pocketsphinx; it is not installed. Install it: {INSTALL_HINT}"
        ) from e


class Aligner:
    """pocketsphinx decoders with the bundled en-us model, for one process (not thread-safe).

    ``transcribe`` decodes with the language model (pocketsphinx's default search settings);
    ``align`` force-aligns a known transcript with a second decoder that has no language model
    and wider phone/word beams (:data:`ALIGN_SETTINGS`). pocketsphinx carries its feature state
    (the cepstral mean) from one utterance to the next, so results would depend on the order of
    the clips: each call starts from re-initialised feature extraction, so a clip's result is the
    same whatever came before it (tested). Audio is padded with :data:`PAD_S` of digital silence at both ends
    before alignment (times are given back relative to the unpadded clip).
    """

    def __init__(self) -> None:
        pocketsphinx_version()
        from pocketsphinx import Decoder

        self._align_decoder: Any = Decoder(
            samprate=SAMPLE_RATE, loglevel="FATAL", lm=None, **ALIGN_SETTINGS
        )
        self._lm_decoder: Any = None  # loaded on first transcribe (27 MB language model)
        self._frame_ms = 1000 // int(self._align_decoder.config["frate"])
        self._dictionary_path = str(self._align_decoder.config["dict"])
        self._known_words: set[str] | None = None

    @staticmethod
    def _run(decoder: Any, pcm: bytes, fresh: bool = False) -> None:
        if fresh:  # pocketsphinx carries its cepstral mean (and more) from one utterance on
            decoder.reinit_feat()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()

    def known_words(self) -> set[str]:
        """Words of the pronunciation dictionary (read once, on first use)."""
        if self._known_words is None:
            with open(self._dictionary_path, encoding="utf-8") as f:
                self._known_words = {_word_text(line.split(maxsplit=1)[0]) for line in f if line}
        return self._known_words

    def transcribe(self, audio: np.ndarray) -> str:
        """``(S,)`` float audio at 16 kHz → the decoded words ("" when nothing was recognised)."""
        if self._lm_decoder is None:
            from pocketsphinx import Decoder

            self._lm_decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")
        self._run(self._lm_decoder, _pcm16(audio), fresh=True)
        hyp = self._lm_decoder.hyp()
        return normalise_transcript(hyp.hypstr) if hyp is not None else ""

    def align(self, audio: np.ndarray, transcript: str) -> list[Word]:
        """Force-align ``transcript`` to ``(S,)`` float audio at 16 kHz.

        Returns the aligned words (silences dropped); an empty list when the decoder finds no path
        through the transcript (e.g. audio much shorter than the words). Raises
        :class:`AlignmentError` for a word that is not in pocketsphinx's dictionary.
        """
        text = normalise_transcript(transcript)
        if not text:
            return []
        unknown = [w for w in text.split() if w not in self.known_words()]
        if unknown:
            raise AlignmentError(
                f"words {unknown} of the transcript {text!r} are not in pocketsphinx's dictionary "
                f"({self._dictionary_path}); expected dictionary words (spell numbers out)"
            )
        pad = np.zeros(round(PAD_S * SAMPLE_RATE), dtype=np.float32)
        pcm = _pcm16(np.concatenate([pad, np.asarray(audio, dtype=np.float32), pad]))
        decoder = self._align_decoder
        try:
            decoder.set_align_text(text)
            self._run(decoder, pcm, fresh=True)
            if decoder.hyp() is None:
                return []
            decoder.set_alignment()
            self._run(decoder, pcm)
        except RuntimeError:  # "Failed to stop utterance processing": no path through the states
            return []
        alignment = decoder.get_alignment()
        if alignment is None:
            return []
        words = []
        shift, end = round(PAD_S * 1000), round(audio.shape[0] * 1000 / SAMPLE_RATE)

        def ms(frame: int) -> int:  # padded frame index → ms in the unpadded clip
            return min(max(frame * self._frame_ms - shift, 0), end)

        # entries are only valid while their iterator is: read them in place, never list() them
        for entry in alignment:
            phones = tuple(Phone(p.name, ms(p.start), ms(p.start + p.duration)) for p in entry)
            if phones and all(p.label in PHONES for p in phones):
                words.append(Word(_word_text(entry.name), phones))
        return words

    def transcribe_and_align(self, audio: np.ndarray) -> tuple[str, list[Word]]:
        """Decode a transcript with the language model, then force-align it."""
        text = self.transcribe(audio)
        return text, self.align(audio, text) if text else []
