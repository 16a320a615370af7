"""Read any HEAR task directory: echoic's builds and the official HEAR 2021 / HEAR benchmark tasks.

A task directory holds ``task_metadata.json``, ``labelvocabulary.csv`` (``idx,label``),
``<split>.json`` per split and ``<sample rate>/<split>/<file>`` audio. Scene splits map a file to
its labels; event splits map a file to ``[{"label", "start", "end"}]`` with times in milliseconds.

Train/valid/test plans follow hear-eval-kit: a ``trainvaltest`` task has one plan; a k-fold task
(``presplit_kfold`` / ``new_split_kfold``) has k plans where fold i is the test set, fold i+1
(cyclically) the validation set and the rest the training set, folds in sorted name order.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from echoic.errors import EchoicError

KFOLD_MODES = ("presplit_kfold", "new_split_kfold")


class TaskFormatError(EchoicError):
    """A task directory does not follow the HEAR layout."""


@dataclass(frozen=True)
class FoldPlan:
    """Which splits train, validate and test one probe (names of ``<split>.json`` files)."""

    train: tuple[str, ...]
    valid: tuple[str, ...]
    test: tuple[str, ...]

    @property
    def name(self) -> str:
        """hear-eval-kit's key for a fold's results: the test splits joined by ``|``."""
        return "|".join(self.test)


@dataclass
class HearTask:
    """A HEAR task directory, read into memory (labels only; audio stays on disk).

    splits: split name → {file name → labels (scene) or events (event)}, in file order.
    vocabulary: labels in index order (``labelvocabulary.csv``).
    """

    path: Path
    metadata: dict[str, Any]
    vocabulary: list[str]
    splits: dict[str, dict[str, Any]]
    fingerprint: str = ""
    label_index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.label_index = {label: i for i, label in enumerate(self.vocabulary)}

    @property
    def name(self) -> str:
        return str(self.metadata["task_name"])

    @property
    def key(self) -> str:
        """Folder name plus content fingerprint: what the embedding cache keys a task by."""
        return f"{self.path.name}-{self.fingerprint}"

    @property
    def embedding_type(self) -> str:
        return str(self.metadata["embedding_type"])

    @property
    def prediction_type(self) -> str:
        return str(self.metadata["prediction_type"])

    @property
    def is_event(self) -> bool:
        return self.embedding_type == "event"

    @property
    def metrics(self) -> list[str]:
        """Metric names, the primary one first (``evaluation`` of the metadata)."""
        return [str(m) for m in self.metadata["evaluation"]]

    @property
    def n_labels(self) -> int:
        return len(self.vocabulary)

    @property
    def evaluation_params(self) -> dict[str, Any]:
        return dict(self.metadata.get("evaluation_params") or {})

    def sample_rates(self) -> list[int]:
        """Sample rates that have an audio folder, ascending."""
        return sorted(int(p.name) for p in self.path.iterdir() if p.is_dir() and p.name.isdigit())

    def audio_path(self, sample_rate: int, split: str, file: str) -> Path:
        return self.path / str(sample_rate) / split / file

    def fold_plans(self) -> list[FoldPlan]:
        """hear-eval-kit's train/valid/test plans (see module docstring)."""
        mode = self.metadata["split_mode"]
        if mode == "trainvaltest":
            return [FoldPlan(("train",), ("valid",), ("test",))]
        if mode in KFOLD_MODES:
            folds = sorted(self.splits)
            if len(folds) < 3:
                raise TaskFormatError(
                    f"{self.path}: k-fold task with {len(folds)} folds; expected at least 3 "
                    "(test, validation and at least one training fold)"
                )
            plans = []
            for i, test in enumerate(folds):
                valid = folds[(i + 1) % len(folds)]
                train = tuple(f for f in folds if f not in (test, valid))
                plans.append(FoldPlan(train, (valid,), (test,)))
            return plans
        raise TaskFormatError(
            f"{self.path}: unknown split_mode {mode!r}; expected 'trainvaltest', "
            "'presplit_kfold' or 'new_split_kfold'"
        )

    def label_ids(self, labels: list[Any]) -> list[int]:
        """Vocabulary indices of a scene clip's labels (labels compared as strings, as HEAR)."""
        try:
            return [self.label_index[str(label)] for label in labels]
        except KeyError as err:
            raise TaskFormatError(
                f"{self.path}: label {err.args[0]!r} is not in labelvocabulary.csv"
            ) from None


REQUIRED_KEYS = ("task_name", "embedding_type", "prediction_type", "split_mode", "evaluation")


def load_task(path: str | Path) -> HearTask:
    """Read the HEAR task at ``path`` (metadata, vocabulary and every split's labels)."""
    path = Path(path)
    meta_file = path / "task_metadata.json"
    if not meta_file.is_file():
        raise TaskFormatError(
            f"{path}: expected a HEAR task directory with task_metadata.json; found none. "
            "Build tasks with `echoic tasks build --out DIR` or point at an unpacked HEAR task"
        )
    metadata = json.loads(meta_file.read_text())
    missing = [k for k in REQUIRED_KEYS if k not in metadata]
    if missing:
        raise TaskFormatError(f"{meta_file}: missing keys {missing}; expected {REQUIRED_KEYS}")
    if metadata["embedding_type"] not in ("scene", "event"):
        raise TaskFormatError(
            f"{meta_file}: embedding_type {metadata['embedding_type']!r}; expected scene|event"
        )
    if metadata["prediction_type"] not in ("multiclass", "multilabel"):
        raise TaskFormatError(
            f"{meta_file}: prediction_type {metadata['prediction_type']!r}; "
            "expected multiclass|multilabel"
        )
    vocabulary = _read_vocabulary(path / "labelvocabulary.csv")
    split_names = metadata.get("splits") or _guess_splits(path)
    digest = hashlib.sha256(meta_file.read_bytes())
    digest.update((path / "labelvocabulary.csv").read_bytes())
    splits: dict[str, dict[str, Any]] = {}
    for split in split_names:
        split_file = path / f"{split}.json"
        if not split_file.is_file():
            raise TaskFormatError(f"{path}: split {split!r} is listed but {split_file} is missing")
        raw = split_file.read_bytes()
        digest.update(raw)
        splits[str(split)] = json.loads(raw)
    return HearTask(path, metadata, vocabulary, splits, digest.hexdigest()[:12])


def _read_vocabulary(path: Path) -> list[str]:
    if not path.is_file():
        raise TaskFormatError(f"expected {path} (columns idx,label); found nothing")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "idx" not in rows[0] or "label" not in rows[0]:
        raise TaskFormatError(f"{path}: expected a header 'idx,label'")
    by_index = {int(r["idx"]): str(r["label"]) for r in rows}
    if sorted(by_index) != list(range(len(by_index))):
        raise TaskFormatError(f"{path}: idx must run 0..{len(by_index) - 1} without gaps")
    return [by_index[i] for i in range(len(by_index))]


def _guess_splits(path: Path) -> list[str]:
    names = {"task_metadata", "labelvocabulary"}
    return sorted(p.stem for p in path.glob("*.json") if p.stem not in names)


def find_tasks(paths: list[str | Path]) -> list[Path]:
    """Task directories under ``paths``: each path is a task directory or a folder of them."""
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if (p / "task_metadata.json").is_file():
            found.append(p)
            continue
        below = sorted(q.parent for q in p.glob("*/task_metadata.json"))
        if not below:
            raise TaskFormatError(
                f"{p}: expected a HEAR task directory (with task_metadata.json) or a folder of "
                "them; found none. Build tasks with `echoic tasks build --out DIR` first"
            )
        found.extend(below)
    return list(dict.fromkeys(found))
