"""Reading HEAR task directories (echoic's and the official layout) and hear-eval-kit's folds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evaluate_helpers import write_task

from echoic.evaluate.task import TaskFormatError, find_tasks, load_task


def test_kfold_plans_follow_hear_eval_kit(tmp_path: Path) -> None:
    task = load_task(write_task(tmp_path, "tones", event=False, folds=5, per_class=1))
    plans = task.fold_plans()
    assert [(p.test, p.valid) for p in plans] == [
        (("fold00",), ("fold01",)),
        (("fold01",), ("fold02",)),
        (("fold02",), ("fold03",)),
        (("fold03",), ("fold04",)),
        (("fold04",), ("fold00",)),
    ]
    assert plans[4].train == ("fold01", "fold02", "fold03")
    for p in plans:
        assert set(p.train) | set(p.valid) | set(p.test) == set(task.splits)
        assert not set(p.train) & (set(p.valid) | set(p.test))


def test_trainvaltest_has_one_plan(tmp_path: Path) -> None:
    task = load_task(write_task(tmp_path, "tones", event=False, split_mode="trainvaltest"))
    [plan] = task.fold_plans()
    assert (plan.train, plan.valid, plan.test) == (("train",), ("valid",), ("test",))


def test_official_hear_layout_with_numeric_labels(tmp_path: Path) -> None:
    """HEAR 2021 metadata carries extra keys and may store labels as numbers in the split json."""
    task_dir = write_task(tmp_path, "nsynth_pitch", event=False, split_mode="trainvaltest")
    meta = json.loads((task_dir / "task_metadata.json").read_text())
    meta.update(
        {
            "download_urls": [],
            "default_mode": "5h",
            "modes": {"5h": {}},
            "evaluation": ["pitch_acc", "chroma_acc"],
        }
    )
    (task_dir / "task_metadata.json").write_text(json.dumps(meta))
    (task_dir / "labelvocabulary.csv").write_text("idx,label\n0,60\n1,61\n2,62\n")
    for split in ("train", "valid", "test"):
        content = json.loads((task_dir / f"{split}.json").read_text())
        numbers = {f: [60 + i % 3] for i, f in enumerate(content)}
        (task_dir / f"{split}.json").write_text(json.dumps(numbers))
    task = load_task(task_dir)
    assert task.vocabulary == ["60", "61", "62"]
    first = next(iter(task.splits["train"].values()))
    assert task.label_ids(first) == [0]
    assert task.metrics == ["pitch_acc", "chroma_acc"]


def test_find_tasks_and_helpful_errors(tmp_path: Path) -> None:
    write_task(tmp_path / "all", "a", event=False, per_class=1)
    write_task(tmp_path / "all", "b", event=True, per_class=1)
    assert [p.name for p in find_tasks([tmp_path / "all"])] == ["a-v1.0.0-full", "b-v1.0.0-full"]
    with pytest.raises(TaskFormatError, match=r"task_metadata\.json"):
        find_tasks([tmp_path])
    with pytest.raises(TaskFormatError, match=r"task_metadata\.json"):
        load_task(tmp_path)
    bad = write_task(tmp_path / "bad", "c", event=False, per_class=1)
    (bad / "labelvocabulary.csv").write_text("idx,label\n0,low\n")
    with pytest.raises(TaskFormatError, match="not in labelvocabulary"):
        task = load_task(bad)
        task.label_ids(["mid"])
