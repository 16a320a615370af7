"""The Markdown table's average row: per-seed averages over tasks, then mean ± std over seeds."""

from __future__ import annotations

import numpy as np

from echoic.evaluate.results import markdown_table, seed_average


def _record(model: str, task: str, scores: dict[tuple[int, int], float]) -> dict:
    runs = [{"seed": s, "fold": f, "test": {"acc": v}} for (s, f), v in scores.items()]
    vals = list(scores.values())
    summary = {"acc": {"mean": float(np.mean(vals)), "std": float(np.std(vals)), "n": len(vals)}}
    return {
        "model": model,
        "task": task,
        "protocol": "hear",
        "primary_metric": "acc",
        "scores": summary,
        "runs": runs,
    }


def test_average_over_tasks_per_seed() -> None:
    records = [
        _record("m", "a", {(0, 0): 0.2, (0, 1): 0.4, (1, 0): 0.6, (1, 1): 0.8}),
        _record("m", "b", {(0, 0): 1.0, (1, 0): 0.0}),
    ]
    # seed 0: (0.3 + 1.0) / 2 = 0.65; seed 1: (0.7 + 0.0) / 2 = 0.35
    avg = seed_average(records, "m", ["a", "b"])
    assert np.isclose(avg["mean"], 0.5) and np.isclose(avg["std"], 0.15) and avg["n"] == 2
    assert seed_average(records, "m", ["a", "missing"])["mean"] is None
    one_seed = [_record("k", "a", {(0, 0): 0.3, (0, 1): 0.5})]
    assert seed_average(one_seed, "k", ["a"]) == {"mean": 0.4, "std": None, "n": 1}
    table = markdown_table(records)
    assert table.splitlines()[-1] == "| **average** | primary | | 0.500 ± 0.150 |"
    assert table.splitlines()[2].startswith("| a | acc | hear | 0.500 ± ")
