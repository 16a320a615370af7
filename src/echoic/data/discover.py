"""Find audio files under folders, in a deterministic order."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from echoic.data.audio import AUDIO_EXTENSIONS


def _is_audio_name(name: str, extensions: Iterable[str]) -> bool:
    lower = name.lower()
    return any(lower.endswith(ext) for ext in extensions)


def find_audio(
    paths: Sequence[str | os.PathLike[str]], extensions: Iterable[str] = AUDIO_EXTENSIONS
) -> list[Path]:
    """Expand files and folders into a list of audio candidates.

    - A path that is not a folder (a file of any extension, or a path that does not exist) is kept
      as given, so that :func:`echoic.data.load_audio` reports what is wrong with it.
    - A folder is walked recursively, names sorted by code point at every level (depth-first),
      and every entry whose *name* ends with one of ``extensions`` (case-insensitive, e.g.
      ``".wav"``) is returned, **including a folder named like ``x.wav``**: it is returned (not
      entered) so the loader reports "is a directory" instead of it vanishing silently.
    - Entries whose name starts with ``.`` are skipped inside walked folders.
    - Symlinked folders are followed once (cycles are cut); a path seen twice is returned once.
    """
    extensions = tuple(e if e.startswith(".") else f".{e}" for e in (x.lower() for x in extensions))
    found: list[Path] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        if p not in seen:
            seen.add(p)
            found.append(p)

    def walk(folder: Path, visited: frozenset[str]) -> None:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            if entry.name.startswith("."):
                continue
            child = folder / entry.name
            if _is_audio_name(entry.name, extensions):
                add(child)
            elif entry.is_dir():
                real = os.path.realpath(child)
                if real not in visited:
                    walk(child, visited | {real})

    for raw in paths:
        p = Path(raw)
        if p.is_dir() and not _is_audio_name(p.name, extensions):
            walk(p, frozenset({os.path.realpath(p)}))
        else:
            add(p)
    return found
