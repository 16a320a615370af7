"""Cached embeddings written in hear-eval-kit's downstream layout, for its own probe runner.

hear-eval-kit 2021.1.3 splits evaluation in two: ``heareval.embeddings.runner`` embeds a task into
``embeddings/<module>/<task>/`` and ``heareval.predictions.runner`` trains the downstream probes
from that folder. This module writes the folder the second step reads, from echoic's embedding
cache, so that hear-eval-kit's own probes and echoic's ``hear`` protocol can be run on the very same
vectors (``benchmarks/bench_heareval.py``). What the predictions runner reads, per task folder:

========================================  =====================================================
``task_metadata.json``                    the task's metadata; the runner needs its ``splits``
``labelvocabulary.csv``                   ``idx,label``
``<split>.json``                          the split's ground truth (event tasks score against it)
``<split>.embedding-dimensions.json``     ``[rows, dims]``
``<split>.embeddings.npy``                raw float32 rows, C order, **no .npy header** (the
                                          runner ``np.memmap``\\ s it with the shape above)
``<split>.target-labels.pkl``             a pickled list, one entry per row: the clip's label
                                          list (scene) or the frame's label list (event)
``<split>.filename-timestamps.json``      event tasks: ``[[<split>/<file>, t_ms], ...]`` per row
                                          (only the path's last part, the file name, is used)
========================================  =====================================================

Row order: hear-eval-kit's embedding step shuffles each split's files once before writing them,
with one ``random.Random(0)`` per task used for the splits in metadata order, and its probe
training never reshuffles (see docs/evaluation.md, deviation 4). ``order="heareval"`` (default)
writes the rows in that order, so the runner sees exactly what its own embedding step would have
written for these vectors; ``order="task"`` keeps the split JSON's order. An event file's frames
stay together, in time order, and are labelled with every event for which
``start <= t < end + 0.0001`` ms (the interval-tree rule of hear-eval-kit).

Pickle is only **written** here, because the reference tool reads nothing else; echoic never reads
pickle. The labels written are plain lists of the JSON values, so the file holds no class
references. A folder written here carries ``echoic_export.json`` (model identity, task key, row
order, per split the files in row order); exporting again into it replaces everything in it,
including the runner's results for the previous vectors.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from echoic.errors import EchoicError
from echoic.evaluate.cache import TaskEmbeddings
from echoic.evaluate.task import HearTask

HEAREVAL_VERSION = "2021.1.3"
"""The hear-eval-kit release whose downstream layout this module writes."""

MARKER = "echoic_export.json"
"""The file that marks a folder as written by :func:`export_task` (safe to replace)."""

ORDERS = ("heareval", "task")


class ExportError(EchoicError):
    """Embeddings or a task cannot be written in hear-eval-kit's layout, or the target is unsafe."""


@dataclass(frozen=True)
class ExportedSplit:
    """One split as written: ``rows`` × ``dims`` float32, ``files`` in the order of the rows."""

    name: str
    rows: int
    dims: int
    files: list[str]


@dataclass(frozen=True)
class HearevalExport:
    """A task folder in hear-eval-kit's downstream layout and what went into it."""

    directory: Path
    splits: dict[str, ExportedSplit]


def split_names(task: HearTask) -> list[str]:
    """The task's splits in metadata order (hear-eval-kit iterates ``metadata["splits"]``)."""
    listed = task.metadata.get("splits")
    return [str(s) for s in listed] if listed else list(task.splits)


def heareval_file_order(task: HearTask) -> dict[str, list[str]]:
    """Each split's files in the order hear-eval-kit's embedding step writes their rows.

    One ``random.Random`` seeded with 0 per task shuffles each split's file list (split JSON
    order) in turn, splits in metadata order; the permutation depends only on the list lengths.
    """
    rng = random.Random(0)
    order: dict[str, list[str]] = {}
    for split in split_names(task):
        files = [str(f) for f in task.splits[split]]
        rng.shuffle(files)
        order[split] = files
    return order


def frame_label_lists(events: list[dict[str, Any]], timestamps_ms: np.ndarray) -> list[list[Any]]:
    """Per frame, the labels of every event that covers it (``start <= t < end + 0.0001`` ms).

    ``events``: one file's ``[{"label", "start", "end"}]`` (ms); ``timestamps_ms`` ``(T,)``.
    Labels keep their JSON values and event order; an event listed twice gives its label twice,
    as hear-eval-kit's interval tree does.
    """
    times = np.asarray(timestamps_ms, np.float64)
    out: list[list[Any]] = [[] for _ in range(times.shape[0])]
    for event in events:
        inside = (times >= float(event["start"])) & (times < float(event["end"]) + 0.0001)
        for i in np.flatnonzero(inside).tolist():
            out[i].append(event["label"])
    return out


def export_task(
    task: HearTask,
    embeddings: TaskEmbeddings,
    out_dir: str | Path,
    order: str = "heareval",
    identity: str = "",
) -> HearevalExport:
    """Write ``embeddings`` of ``task`` into ``out_dir`` in hear-eval-kit's downstream layout.

    ``out_dir`` is the task's folder (e.g. ``OUT/<model>/<task folder>/``, what
    ``python -m heareval.predictions.runner`` takes); it must be new, empty or written here
    before (then its content is replaced). ``identity`` (the model identity) is recorded in the
    marker file. Returns where the rows went and in which order.
    """
    if order not in ORDERS:
        raise ExportError(f"order {order!r}: expected one of {ORDERS}")
    out = Path(out_dir)
    _prepare(out)
    names = split_names(task)
    missing = [s for s in names if s not in embeddings.splits or s not in task.splits]
    if missing:
        raise ExportError(
            f"{task.path}: split(s) {missing} of task_metadata.json have no cached embeddings "
            f"(found {sorted(embeddings.splits)}); embed the task first (echoic eval / "
            "echoic export-heareval with the model)"
        )
    files_by_split = (
        heareval_file_order(task)
        if order == "heareval"
        else {s: [str(f) for f in task.splits[s]] for s in names}
    )
    written: dict[str, ExportedSplit] = {}
    dims: set[int] = set()
    for split in names:
        part = _write_split(task, embeddings, split, files_by_split[split], out)
        written[split] = part
        dims.add(part.dims)
    if len(dims) > 1:
        raise ExportError(
            f"{task.path}: embedding widths differ between splits "
            f"({ {s: p.dims for s, p in written.items()} }); hear-eval-kit needs one width. "
            "Delete the task's cache folder and embed it again"
        )
    _write_task_files(task, names, out)
    marker = {
        "heareval_version": HEAREVAL_VERSION,
        "identity": identity,
        "task": str(task.path),
        "task_key": task.key,
        "order": order,
        "cache": str(embeddings.directory),
        "splits": {
            s: {"rows": p.rows, "dims": p.dims, "files": p.files} for s, p in written.items()
        },
    }
    _write_bytes(out / MARKER, (json.dumps(marker, indent=1) + "\n").encode())
    return HearevalExport(out, written)


def _prepare(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: expected a folder to write the export into; found a file")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise ExportError(
                f"{out}: expected a new or empty folder, or one written by echoic export-heareval "
                f"(with {MARKER}); found other files. Pick another output folder or empty this one"
            )
        shutil.rmtree(out)  # an earlier export: its vectors and the runner's results for them
    out.mkdir(parents=True, exist_ok=True)


def _write_split(
    task: HearTask, embeddings: TaskEmbeddings, split: str, files: list[str], out: Path
) -> ExportedSplit:
    cached = embeddings.splits[split]
    position = {f: i for i, f in enumerate(cached.files)}
    if sorted(position) != sorted(files) or len(position) != len(cached.files):
        raise ExportError(
            f"cache {embeddings.directory}: split {split} lists other files than "
            f"{task.path}/{split}.json ({len(cached.files)} cached, {len(files)} in the task); "
            "delete that cache folder and embed again"
        )
    content = task.splits[split]
    if cached.x.ndim != 2:
        raise ExportError(
            f"cache {embeddings.directory}: split {split} has embeddings of shape "
            f"{cached.x.shape}; expected (rows, dims)"
        )
    dims = int(cached.x.shape[1])
    labels: list[Any] = []
    if task.is_event:
        if cached.offsets is None or cached.timestamps_ms is None:
            raise ExportError(
                f"cache {embeddings.directory}: split {split} of event task {task.name} has no "
                "frame offsets/timestamps; delete that cache folder and embed again"
            )
        offsets, times = cached.offsets, cached.timestamps_ms
        pieces: list[np.ndarray] = []
        stamps: list[list[Any]] = []
        for f in files:
            i = position[f]
            a, b = int(offsets[i]), int(offsets[i + 1])
            pieces.append(cached.x[a:b])
            labels.extend(frame_label_lists(content[f], times[a:b]))
            stamps.extend([f"{split}/{f}", float(t)] for t in times[a:b].tolist())
        rows = np.concatenate(pieces) if pieces else np.zeros((0, dims), np.float32)
        _write_bytes(
            out / f"{split}.filename-timestamps.json", (json.dumps(stamps, indent=1)).encode()
        )
    else:
        rows = cached.x[[position[f] for f in files]]
        for f in files:
            clip = list(content[f])
            if task.prediction_type == "multiclass" and len(clip) != 1:
                raise ExportError(
                    f"{task.path}/{split}.json: clip {f} of multiclass task {task.name} has "
                    f"labels {clip}; hear-eval-kit expects exactly one. Fix the task (or mark it "
                    "multilabel in task_metadata.json)"
                )
            labels.append(clip)
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    if not np.isfinite(rows).all():
        bad = int((~np.isfinite(rows)).any(1).sum())
        raise ExportError(
            f"cache {embeddings.directory}: split {split} has {bad} row(s) with NaN or inf; "
            "hear-eval-kit refuses non-finite embeddings. Fix the model's output and embed again"
        )
    tmp = out / f"{split}.embeddings.npy.partial"
    with tmp.open("wb") as fh:
        rows.tofile(fh)  # raw rows, no header: hear-eval-kit memmaps the file
    os.replace(tmp, out / f"{split}.embeddings.npy")
    _write_bytes(
        out / f"{split}.embedding-dimensions.json", json.dumps([rows.shape[0], dims]).encode()
    )
    _write_bytes(out / f"{split}.target-labels.pkl", pickle.dumps(labels))
    return ExportedSplit(split, int(rows.shape[0]), dims, list(files))


def _write_task_files(task: HearTask, names: list[str], out: Path) -> None:
    meta_file = task.path / "task_metadata.json"
    if task.metadata.get("splits"):
        _write_bytes(out / "task_metadata.json", meta_file.read_bytes())
    else:  # the runner reads metadata["splits"]; echoic's reader accepts its absence
        meta = {**task.metadata, "splits": names}
        _write_bytes(out / "task_metadata.json", (json.dumps(meta, indent=1) + "\n").encode())
    _write_bytes(out / "labelvocabulary.csv", (task.path / "labelvocabulary.csv").read_bytes())
    for split in names:
        _write_bytes(out / f"{split}.json", (task.path / f"{split}.json").read_bytes())


def _write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_bytes(data)
    os.replace(tmp, path)
