"""The retrieval protocol: metrics against a hand-computed example and scikit-learn's AP, exact
neighbours with deterministic ties, and `echoic eval --protocol retrieval` end to end."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from evaluate_helpers import BandEnergyModel

from echoic.evaluate import EvalConfig, ProbeConfig, evaluate
from echoic.evaluate.retrieval import nearest, retrieval_scores


def hot(rows: list[str], labels: str = "ABCD") -> np.ndarray:
    return np.array([[float(c in r) for c in labels] for r in rows], np.float32)


def test_metrics_match_a_hand_computed_example() -> None:
    index = hot(["A", "B", "A", "C", "B"])
    queries = hot(["A", "B", "AC", "D"])  # multilabel q2; q3's label is nowhere in the index
    ids = np.array([[1, 4, 3], [4, 3, 1], [3, 1, 4], [0, 1, 2]])
    out = retrieval_scores(queries, index, ids, k=3)
    # q0: nothing relevant retrieved, AP 0. q1 (R=2): relevant at 1 and 3, AP (1 + 2/3) / 2.
    # q2 (R=3: items 0, 2, 3 share A or C): relevant at 1, AP 1 / min(3, 3). q3: no relevant item.
    assert out["test"]["mAP@3"] == pytest.approx((0 + 5 / 6 + 1 / 3) / 3)
    assert out["test"]["P@1"] == pytest.approx(2 / 3)
    assert out["recall@3_by_label"] == {0: 0.5, 1: 1.0, 2: 1.0}  # A: q0 missed, q2 found
    assert out["test"]["recall@3"] == pytest.approx(2.5 / 3)
    assert (out["queries"], out["queries_without_relevant"]) == (4, 1)


def test_average_precision_over_everything_is_scikit_learns() -> None:
    """With every index item retrieved, AP@N is the usual AP (scikit-learn's, no tied scores)."""
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    index_labels = rng.integers(0, 4, 60)
    query_labels = rng.integers(0, 4, 25)
    scores = rng.standard_normal((25, 60))
    ids = np.argsort(-scores, axis=1)
    eye = np.eye(4, dtype=np.float32)
    out = retrieval_scores(eye[query_labels], eye[index_labels], ids, k=60)
    reference = np.mean(
        [
            average_precision_score(index_labels == q, s)
            for q, s in zip(query_labels, scores, strict=True)
        ]
    )
    assert out["test"]["mAP@60"] == pytest.approx(reference, abs=1e-12)


def test_nearest_is_exact_cosine_with_ties_to_the_lower_row() -> None:
    index = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [1.0, 1.0]], np.float32)
    ids = nearest(np.array([[3.0, 0.1], [0.0, -1.0]], np.float32), index, 3)
    assert ids[0].tolist() == [0, 2, 3]  # rows 0 and 2 tie (same direction): lower first
    assert ids[1].tolist()[:1] == [0]  # all at cosine 0 or below: 0 and 2 tie at 0, then 3
    assert nearest(index[:1], index, 10).shape == (1, 4)  # k larger than the index


def test_eval_retrieval_protocol_end_to_end(
    scene_task: Path, event_task: Path, tmp_path: Path, tiny_model_factory
) -> None:
    from echoic.checkpoint import save
    from echoic.cli.main import main

    model_dir = save(tiny_model_factory(0), tmp_path / "tiny")
    out = tmp_path / "cli"
    args = ["eval", "--model", str(model_dir), "--tasks", str(scene_task), str(event_task)]
    assert main([*args, "--out", str(out), "--protocol", "retrieval", "--quiet"]) == 0
    records = {r["task"]: r for r in (json.loads(p.read_text()) for p in out.glob("*/*.json"))}
    assert set(records) == {"tones", "bursts"}
    for record in records.values():
        assert record["protocol"] == "retrieval" and record["primary_metric"] == "mAP@10"
        assert record["metrics"] == ["mAP@10", "P@1", "recall@10"]
        assert len(record["runs"]) == 3  # one per fold, deterministic
        run = record["runs"][0]
        assert run["seed"] == 0 and run["index_size"] == 2 * run["queries"]  # 2 folds vs 1
        assert set(run["recall@10_by_label"]) == {"high", "low", "mid"}
    with (out / "results.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["protocol"] == "retrieval"]
    assert {r["metric"] for r in rows} == {"mAP@10", "P@1", "recall@10"}
    assert (out / "report.html").is_file()


def test_band_energies_retrieve_their_own_tone(
    scene_task: Path, event_task: Path, tmp_path: Path
) -> None:
    """Three tone frequencies: band energies find a clip of the same tone first, every time."""
    config = EvalConfig(
        out=tmp_path, probe=ProbeConfig(protocol="retrieval"), progress=False, report=False
    )
    records = evaluate([BandEnergyModel()], [scene_task, event_task], config, log=lambda _: None)
    for record in records:
        assert record["scores"]["P@1"]["mean"] == 1.0, (record["task"], record["scores"])
        assert record["scores"]["mAP@10"]["mean"] >= 0.9
