"""What the explorer colours points by: a label per row, the folder it is in, or its k-means cluster.

Labels are found, per row, in this order: a ``label`` column of the index's ``items.parquet``
(when a future writer adds one), else the HEAR task layout that ``echoic`` task builders write —
an audio file ``TASK/RATE/SPLIT/NAME`` is labelled by ``TASK/SPLIT.json`` (``{NAME: [labels]}``,
or ``[{"label": ...}, ...]`` events), when ``TASK/task_metadata.json`` exists. The folder of a
row is the first folder of its path under the collection root (a task, for a collection of
tasks). Each scheme keeps its most frequent values and groups the rest as ``other``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MAX_COLOURS = 19
"""Distinct values drawn in their own colour; the rest share the ``other`` colour."""

OTHER = "other"
UNLABELLED = "(no label)"


@dataclass
class Colouring:
    """One way to colour the map: per point a code into ``names`` (the legend, most frequent
    first, ``other`` last when values were grouped) and how many points each name has."""

    scheme: str
    codes: np.ndarray
    names: list[str]
    counts: list[int]

    def as_json(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "names": self.names,
            "counts": self.counts,
            "codes": self.codes.tolist(),
        }


def categorical(scheme: str, values: list[str], max_colours: int = MAX_COLOURS) -> Colouring:
    """Codes for ``values``: the ``max_colours`` most frequent each get one, the rest ``other``."""
    counts = Counter(values)
    ranked = sorted(counts, key=lambda v: (-counts[v], v))
    kept = ranked if len(ranked) <= max_colours + 1 else ranked[:max_colours]
    code_of = {name: i for i, name in enumerate(kept)}
    other = len(kept)
    codes = np.array([code_of.get(v, other) for v in values], dtype=np.int32)
    names = list(kept)
    tallies = [counts[v] for v in kept]
    if len(kept) < len(ranked):
        names.append(OTHER)
        tallies.append(sum(counts[v] for v in ranked[len(kept) :]))
    return Colouring(scheme, codes, names, tallies)


def _split_labels(json_path: Path) -> dict[str, str]:
    """``{file name: label}`` of one HEAR split file (multi-label and event labels joined)."""
    try:
        raw = json.loads(json_path.read_text())
    except (OSError, ValueError):
        return {}
    out: dict[str, str] = {}
    if not isinstance(raw, dict):
        return out
    for name, value in raw.items():
        labels: list[str] = []
        for entry in value if isinstance(value, list) else [value]:
            if isinstance(entry, dict) and "label" in entry:
                labels.append(str(entry["label"]))
            elif isinstance(entry, str | int | float):
                labels.append(str(entry))
        if labels:
            out[str(name)] = " + ".join(sorted(set(labels)))
    return out


def hear_labels(paths: list[str]) -> list[str | None]:
    """The HEAR label of every path (``None`` where the path is not in a HEAR task's layout)."""
    splits: dict[Path, dict[str, str]] = {}
    out: list[str | None] = []
    for text in paths:
        path = Path(text)
        split_dir = path.parent
        task_dir = split_dir.parent.parent
        json_path = task_dir / f"{split_dir.name}.json"
        if json_path not in splits:
            is_task = (task_dir / "task_metadata.json").is_file()
            splits[json_path] = _split_labels(json_path) if is_task else {}
        out.append(splits[json_path].get(path.name))
    return out


def row_labels(paths: list[str], column: list[Any] | None) -> list[str | None]:
    """Per row: the ``label`` column's value where there is one, else the HEAR label."""
    found = hear_labels(paths)
    if column is None:
        return found
    return [found[i] if v is None else str(v) for i, v in enumerate(column)]


def collection_root(paths: list[str]) -> str:
    """The deepest folder holding every indexed file (``/`` for files spread everywhere)."""
    folders = {os.path.dirname(os.path.abspath(p)) for p in paths}
    return os.path.commonpath(sorted(folders)) if folders else os.sep


def top_folders(paths: list[str], root: str) -> list[str]:
    """The first folder of each path under ``root`` (``.`` for files directly in it)."""
    out = []
    for p in paths:
        rel = os.path.relpath(os.path.abspath(p), root)
        head = rel.split(os.sep, 1)
        out.append(head[0] if len(head) > 1 else ".")
    return out


def colourings(
    labels: list[str | None], folders: list[str], clusters: np.ndarray
) -> dict[str, Colouring]:
    """Every scheme that tells points apart: ``label`` (when any row has one), ``folder`` (when
    rows are in more than one), ``cluster`` (always)."""
    out: dict[str, Colouring] = {}
    if any(label is not None for label in labels):
        out["label"] = categorical("label", [UNLABELLED if v is None else v for v in labels])
    if len(set(folders)) > 1:
        out["folder"] = categorical("folder", folders)
    out["cluster"] = categorical("cluster", [f"cluster {int(c) + 1}" for c in clusters])
    return out


def default_scheme(schemes: dict[str, Colouring]) -> str:
    """``label`` when it has few enough values to tell apart, else ``folder``, else ``cluster``."""
    for name in ("label", "folder"):
        if name in schemes and OTHER not in schemes[name].names:
            return name
    return "label" if "label" in schemes else "cluster"
