"""What a pretraining-corpus source is: a registered builder that lists (or renders) audio.

A source is one module in :mod:`echoic.corpus.sources` that registers a :class:`CorpusSource`
subclass in :data:`SOURCES`; dropping a file there is enough. :meth:`CorpusSource.items` yields
:class:`CorpusItem` s: either an existing file used in place (``path``) or audio to render once
into the corpus folder (``render``). The builder (:mod:`echoic.corpus.build`) writes rendered audio
atomically, skips items already on disk (resumable) and records every file with its content hash.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from echoic.data.captions import Caption
from echoic.errors import EchoicError
from echoic.registry import Registry

__all__ = ["SOURCES", "CorpusContext", "CorpusError", "CorpusItem", "CorpusSource"]


class CorpusError(EchoicError):
    """A corpus source cannot run here, or a corpus fails its checks."""


@dataclass(frozen=True)
class CorpusItem:
    """One corpus file.

    key: unique within its source; a rendered item is written to ``audio/<source>/<key>.flac``.
    path: an existing audio file used in place (no copy), or None for a rendered item.
    render: returns ``(float audio, sample rate)`` for a rendered item: audio ``(S,)`` mono or
        ``(C, S)`` channel-first (written as a C-channel FLAC).
    origin: where it comes from (a path relative to the shared data folder, a task file, a
        description of what was rendered); recorded in the manifest.
    captions: the clip's captions (``captions.csv``); empty for audio-only sources.
    group: the key its held-out split is drawn from (default ``<source>/<key>``): clips that
        share a caption (a sound and its spoken description) share a group.
    licence: this file's licence when it differs per file (``licences.csv``), else empty.
    category: ``sfx``, ``speech`` or ``music`` when the source knows it (``categories.csv`` and
        hours per category in ``summary.json``), else empty.
    """

    key: str
    path: Path | None = None
    render: Callable[[], tuple[np.ndarray, int]] | None = None
    origin: str = ""
    captions: tuple[Caption, ...] = ()
    group: str = ""
    licence: str = ""
    category: str = ""


@dataclass(frozen=True)
class CorpusContext:
    """What sources may read: the shared data folder, built task folders, an hours cap, a seed,
    and the size limit of a downloaded package (bigger ones are opt-in: raise the limit)."""

    data_dir: Path
    tasks_dir: Path | None = None
    max_hours: float | None = None
    seed: int = 0
    max_package_mb: float = 300.0


class CorpusSource(ABC):
    """A registered corpus source. ``licence`` names the licence(s) of the audio it yields.

    ``heldout_fraction`` > 0 sends that fraction of its groups (a seeded hash, see
    :func:`echoic.data.captions.in_heldout`) to ``heldout.csv``, the caption retrieval
    evaluation set, instead of ``manifest.csv``.

    ``pcm_dedup``: the builder decodes every file of the source and drops one whose decoded
    samples (:func:`echoic.corpus.pcm.pcm_sha256`) equal those of a file kept earlier by any
    source of the build that also sets it (the same sound in another container or format).
    """

    name: ClassVar[str]
    licence: ClassVar[str]
    description: ClassVar[str]
    heldout_fraction: ClassVar[float] = 0.0
    pcm_dedup: ClassVar[bool] = False

    def unavailable(self, ctx: CorpusContext) -> str | None:
        """None when the source can run here, else one line saying what is missing and how to fix."""
        return None

    @abstractmethod
    def items(self, ctx: CorpusContext) -> Iterator[CorpusItem]:
        """The source's files, in a deterministic order."""


SOURCES: Registry[type[CorpusSource]] = Registry(
    "corpus source", discover_package="echoic.corpus.sources"
)
"""Source name → class (instantiated without arguments)."""
