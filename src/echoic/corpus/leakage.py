"""Check a corpus against every evaluation task's held-out audio, by content hash and by origin.

Held out: every split of a k-fold task, and every split but ``train`` of a fixed-split task (the
validation split too: it selects probe hyper-parameters). For each held-out clip the check hashes
the task's own wav file(s) (every sample-rate folder) and the shared source files listed for it in
the task's ``sources.csv``; a corpus file whose sha256 matches either, or whose recorded origin is
one of those source paths, is a leak.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from echoic.corpus.base import CorpusError
from echoic.corpus.build import file_sha256

__all__ = ["HeldOut", "Leak", "check_corpus", "held_out_hashes", "task_dirs"]


@dataclass(frozen=True)
class Leak:
    """A corpus file that is (or comes from) held-out evaluation audio."""

    corpus_file: str
    task: str
    held_out: str
    how: str  # "sha256" or "origin"


@dataclass
class HeldOut:
    """sha256 → description, and shared-data relative paths, of held-out evaluation audio."""

    hashes: dict[str, str]
    origins: dict[str, str]
    tasks: list[str]
    files: int


def task_dirs(paths: Iterable[Path]) -> list[Path]:
    """Task folders (holding ``task_metadata.json``) given task folders or folders of them."""
    found: list[Path] = []
    for path in paths:
        if (path / "task_metadata.json").is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(p.parent for p in path.glob("*/task_metadata.json")))
        else:
            raise CorpusError(f"{path}: expected a task folder or a folder of task folders")
    return found


def _held_out_splits(meta: dict) -> list[str]:
    splits = list(meta.get("splits", []))
    if "kfold" in str(meta.get("split_mode", "")):
        return splits
    return [s for s in splits if s != "train"]


def held_out_hashes(tasks: Sequence[Path], data_dir: Path | None) -> HeldOut:
    """Hash every held-out wav of ``tasks`` and, when ``data_dir`` is given, its source files."""
    held = HeldOut(hashes={}, origins={}, tasks=[], files=0)
    for task in task_dirs(tasks):
        meta = json.loads((task / "task_metadata.json").read_text())
        name = str(meta.get("task_name", task.name))
        held.tasks.append(name)
        splits = set(_held_out_splits(meta))
        for rate_dir in sorted(p for p in task.iterdir() if p.is_dir() and p.name.isdigit()):
            for split in splits:
                for wav in sorted((rate_dir / split).glob("*.wav")):
                    held.hashes[file_sha256(wav)] = f"{name}/{rate_dir.name}/{split}/{wav.name}"
                    held.files += 1
        sources = task / "sources.csv"
        if not sources.is_file():
            continue
        with open(sources, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if row["split"] not in splits or not row.get("sources"):
                    continue
                for rel in row["sources"].split(";"):
                    held.origins[rel] = f"{name}/{row['split']}/{row['file']}"
                    src = data_dir / rel if data_dir is not None else None
                    if src is not None and src.is_file():
                        held.hashes.setdefault(file_sha256(src), f"{name} source {rel}")
                        held.files += 1
    return held


def check_corpus(rows: Sequence[dict[str, str]], held: HeldOut) -> list[Leak]:
    """Corpus manifest rows that match held-out audio by sha256 or by recorded origin."""
    leaks = []
    for row in rows:
        hit = held.hashes.get(row["sha256"])
        if hit is not None:
            leaks.append(Leak(row["file"], hit.split("/")[0].split(" ")[0], hit, "sha256"))
            continue
        origin = row.get("origin", "")
        if origin in held.origins:
            where = held.origins[origin]
            leaks.append(Leak(row["file"], where.split("/")[0], where, "origin"))
    return leaks
