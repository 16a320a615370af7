"""Summarise built HEAR task directories: per task and split, clips, label counts and duration."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import soundfile as sf

from echoic.tasks.base import TaskDataError


@dataclass
class SplitSummary:
    """One split of a task: clip count, label (or event label) counts, seconds of audio per rate."""

    name: str
    clips: int
    label_counts: dict[str, int]
    events: int
    seconds: dict[int, float] = field(default_factory=dict)


@dataclass
class TaskSummary:
    name: str
    directory: Path
    metadata: dict[str, object]
    vocabulary: list[str]
    splits: list[SplitSummary]


def find_task_dirs(path: Path) -> list[Path]:
    """``path`` itself if it is a task directory, else its task sub-directories (sorted)."""
    path = Path(path)
    if (path / "task_metadata.json").is_file():
        return [path]
    found = sorted(p.parent for p in path.glob("*/task_metadata.json"))
    if not found:
        raise TaskDataError(
            f"{path}: expected a HEAR task directory (with task_metadata.json) or a folder of them; "
            "found none. Build tasks with `echoic tasks build --out DIR` first"
        )
    return found


def summarise_task(task_dir: Path) -> TaskSummary:
    """Read ``task_dir`` (HEAR layout) and count what is in it."""
    meta = json.loads((task_dir / "task_metadata.json").read_text())
    vocab_lines = (task_dir / "labelvocabulary.csv").read_text().splitlines()[1:]
    vocabulary = [line.split(",", 1)[1] for line in vocab_lines if line]
    rates = sorted(int(p.name) for p in task_dir.iterdir() if p.is_dir() and p.name.isdigit())
    splits = []
    for split in meta.get("splits") or _guess_splits(task_dir):
        content = json.loads((task_dir / f"{split}.json").read_text())
        counts: Counter[str] = Counter()
        events = 0
        for labels in content.values():
            for item in labels:
                if isinstance(item, dict):
                    counts[item["label"]] += 1
                    events += 1
                else:
                    counts[item] += 1
        summary = SplitSummary(split, len(content), dict(sorted(counts.items())), events)
        for rate in rates:
            folder = task_dir / str(rate) / split
            files = [folder / name for name in content if (folder / name).is_file()]
            summary.seconds[rate] = sum(sf.info(str(f)).duration for f in files)
        splits.append(summary)
    return TaskSummary(str(meta["task_name"]), task_dir, meta, vocabulary, splits)


def _guess_splits(task_dir: Path) -> list[str]:
    names = {p.stem for p in task_dir.glob("*.json")} - {"task_metadata"}
    return sorted(names)


def format_summary(summary: TaskSummary, max_labels: int = 60) -> str:
    """Human-readable lines for :func:`summarise_task`'s result."""
    m = summary.metadata
    metrics = cast("list[object]", m["evaluation"])  # HEAR task_metadata.json: a list of names
    lines = [
        f"{summary.directory.name}: {m['embedding_type']}/{m['prediction_type']}, "
        f"{m['split_mode']}, {len(summary.vocabulary)} labels, sample_duration "
        f"{m['sample_duration']} s, metrics {', '.join(map(str, metrics))}"
    ]
    total = 0
    for s in summary.splits:
        total += s.clips
        secs = ", ".join(f"{sec / 60:.1f} min @ {rate} Hz" for rate, sec in s.seconds.items())
        what = f"{s.events} events, " if s.events else ""
        lines.append(f"  {s.name}: {s.clips} clips, {what}{secs or 'no audio'}")
        items = list(s.label_counts.items())
        shown = " ".join(f"{label}={n}" for label, n in items[:max_labels])
        more = f" ... (+{len(items) - max_labels} labels)" if len(items) > max_labels else ""
        lines.append(f"    {shown}{more}")
    lines.append(f"  total: {total} clips")
    return "\n".join(lines)
