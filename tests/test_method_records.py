"""The committed leaderboard records (benchmarks/records/methods) and the tables in docs/methods.md
must agree, and the table arithmetic (mean over seeds, spread of the nine-task average) must hold."""

from __future__ import annotations

import importlib.util
import json
import statistics
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lb():
    spec = importlib.util.spec_from_file_location(
        "method_leaderboard", ROOT / "benchmarks" / "method_leaderboard.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _doc_tables() -> str:
    doc = (ROOT / "docs" / "methods.md").read_text()
    return doc.split("<!-- leaderboard -->\n", 1)[1].split("\n<!-- /leaderboard -->", 1)[0]


def test_docs_tables_are_the_records(lb) -> None:
    records = lb.load_records()
    assert {m for m, _ in records} == set(lb.ORDER), "every row of the leaderboard has a record"
    assert _doc_tables() == lb.table(records, [0, 1, 2], lb.FULL), (
        "docs/methods.md disagrees with benchmarks/records/methods: "
        "rerun benchmarks/method_leaderboard.py … --write docs/methods.md"
    )


def test_every_trained_method_has_a_calibration(lb) -> None:
    records = lb.load_records()
    for method, seed in records:
        if method in lb.RANDOM:
            continue
        calibration = json.loads((lb.RECORDS / f"{method}-calibration.json").read_text())
        record = records[(method, seed)]
        assert calibration["max_steps"] == record.get("max_steps", record["steps"]), (method, seed)


def test_table_mean_and_spread_over_seeds(lb, tmp_path: Path) -> None:
    tasks = ["a", "b"]
    for seed, (a, b) in enumerate([(0.5, 0.7), (0.7, 0.9)]):
        record = {
            "method": "mae", "seed": seed, "steps": 10, "train_cpu_s": 60.0 * (seed + 1),
            "scores": {"linear": {"a": a, "b": b}, "knn": {"a": a / 2, "b": b / 2}},
        }  # fmt: skip
        (tmp_path / f"mae-seed{seed}.json").write_text(json.dumps(record))
    text = lb.table(lb.load_records(tmp_path), [0, 1, 2], tasks)
    spread = statistics.stdev([0.6, 0.8])
    assert f"| mae | 10 | 1.5 | 0.700 ± {spread:.3f} (n=2) | 0.600 | 0.800 |" in text
    assert f"| mae | 10 | 1.5 | 0.350 ± {spread / 2:.3f} (n=2) | 0.300 | 0.400 |" in text
    only_first = lb.table(lb.load_records(tmp_path), [0], tasks)
    assert "| mae | 10 | 1.0 | 0.600 ± 0.000 (n=1) | 0.500 | 0.700 |" in only_first
