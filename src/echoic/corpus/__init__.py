"""Pretraining corpora that are honest by construction: ``echoic corpus build`` and ``check``.

Sources (:data:`SOURCES`) list or render audio; :func:`build_corpus` writes a manifest with the
content hash of every file; :func:`check_corpus` compares those hashes with every evaluation
task's held-out audio (and the shared source files it came from) and names any overlap.
"""

from echoic.corpus.base import SOURCES, CorpusContext, CorpusError, CorpusItem, CorpusSource
from echoic.corpus.build import CorpusSummary, build_corpus, read_manifest
from echoic.corpus.leakage import Leak, check_corpus, held_out_hashes

__all__ = [
    "SOURCES",
    "CorpusContext",
    "CorpusError",
    "CorpusItem",
    "CorpusSource",
    "CorpusSummary",
    "Leak",
    "build_corpus",
    "check_corpus",
    "held_out_hashes",
    "read_manifest",
]
