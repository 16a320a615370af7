"""Probe units: a stopped HEAR run resumes from its finished units, and units run in processes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from evaluate_helpers import BandEnergyModel

import echoic.evaluate.probes as probes
from echoic.errors import ConfigError
from echoic.evaluate import EvalConfig, ProbeConfig, evaluate
from echoic.evaluate.cache import embed_task
from echoic.evaluate.task import load_task
from echoic.evaluate.units import Unit, UnitStore, run_units

HEAR = ProbeConfig(protocol="hear", seeds=2, max_epochs=6, hidden_dim=16, grid_points=3)


def _config(out: Path, **kw) -> EvalConfig:
    return EvalConfig(out=out, probe=HEAR, progress=False, report=False, device="cpu", **kw)


def _runs(record: dict) -> list[tuple]:
    """What a run produced, without its timing."""
    keys = ("fold", "seed", "valid_score", "best_epoch", "epochs_run")
    return [
        (*(r[k] for k in keys), sorted(r["test"].items()), r.get("postprocessing"))
        for r in record["runs"]
    ]


@pytest.fixture
def counted_fit(monkeypatch):
    """Counts the probe units trained; ``fail_at`` makes the n-th unit raise."""
    state = {"calls": 0, "fail_at": None}
    real = probes.fit_probes

    def fit(*args, **kwargs):
        state["calls"] += 1
        if state["fail_at"] is not None and state["calls"] == state["fail_at"]:
            raise RuntimeError("simulated stop")
        return real(*args, **kwargs)

    monkeypatch.setattr(probes, "fit_probes", fit)
    return state


@pytest.mark.parametrize("task_fixture", ["scene_task", "event_task"])
def test_a_stopped_hear_run_resumes_from_its_finished_units(
    task_fixture: str, request, tmp_path: Path, counted_fit
) -> None:
    task = request.getfixturevalue(task_fixture)
    torch.set_num_threads(1)
    # 3 grid points on fold 0 (one unit each), then the chosen point on folds 1 and 2
    [whole] = evaluate([BandEnergyModel()], [task], _config(tmp_path / "a"), log=lambda _: None)
    assert counted_fit["calls"] == 3 + 2

    counted_fit.update(calls=0, fail_at=4)  # stops in the first unit after the grid search
    with pytest.raises(RuntimeError, match="simulated stop"):
        evaluate([BandEnergyModel()], [task], _config(tmp_path / "b"), log=lambda _: None)
    kept = list((tmp_path / "b").glob("*/.units/*/*.json"))
    assert len(kept) == 3 and not list((tmp_path / "b").glob("*/*.json"))

    counted_fit.update(calls=0, fail_at=None)
    [resumed] = evaluate([BandEnergyModel()], [task], _config(tmp_path / "b"), log=lambda _: None)
    assert counted_fit["calls"] == 2  # only the two folds left
    assert _runs(resumed) == _runs(whole)
    assert resumed["grid"] == whole["grid"] and resumed["hparams"] == whole["hparams"]
    assert not list((tmp_path / "b").glob("*/.units/*/*.json"))  # cleared once written


def test_units_of_other_settings_are_not_reused(scene_task: Path, tmp_path: Path, counted_fit):
    counted_fit["fail_at"] = 2
    with pytest.raises(RuntimeError):
        evaluate([BandEnergyModel()], [scene_task], _config(tmp_path), log=lambda _: None)
    counted_fit.update(calls=0, fail_at=None)
    other = EvalConfig(
        out=tmp_path,
        probe=ProbeConfig(**{**HEAR.__dict__, "seeds": 1}),
        progress=False,
        report=False,
        device="cpu",
    )
    evaluate([BandEnergyModel()], [scene_task], other, log=lambda _: None)
    assert counted_fit["calls"] == 3 + 2  # another probe config: nothing reused
    # its result replaced the stopped run's, whose unit was dropped with it
    assert not list(tmp_path.glob("*/.units/*/*.json"))
    counted_fit.update(calls=0, fail_at=2)
    with pytest.raises(RuntimeError):
        evaluate([BandEnergyModel()], [scene_task], _config(tmp_path), log=lambda _: None)
    counted_fit.update(calls=0, fail_at=2)
    with pytest.raises(RuntimeError):  # the first config again, told not to resume
        evaluate(
            [BandEnergyModel()], [scene_task], _config(tmp_path, resume=False), log=lambda _: None
        )
    # the kept unit was dropped: the run trained unit 0 again and stopped in unit 1
    assert counted_fit["calls"] == 2 and len(list(tmp_path.glob("*/.units/*/*.json"))) == 1


def test_jobs_train_units_in_other_processes_with_the_same_results(
    event_task: Path, tmp_path: Path
) -> None:
    torch.set_num_threads(1)
    quiet = {"log": lambda _: None}
    [one] = evaluate([BandEnergyModel()], [event_task], _config(tmp_path / "1"), **quiet)
    [two] = evaluate([BandEnergyModel()], [event_task], _config(tmp_path / "2", jobs=2), **quiet)
    assert _runs(two) == _runs(one) and two["grid"] == one["grid"]

    task = load_task(event_task)
    emb = embed_task(BandEnergyModel(), task, tmp_path / "cache", "band", progress=False)
    store = UnitStore(tmp_path / "units")
    outcome = probes.run_probe(task, emb, HEAR, store=store, jobs=2)
    assert [r["test"] for r in outcome.runs] == [r["test"] for r in one["runs"]]


def test_run_units_uses_worker_processes_and_keeps_their_work_when_one_fails(
    tmp_path: Path,
) -> None:
    units = [Unit(0, (i,)) for i in range(4)]
    out = run_units(units, lambda u: {"pid": os.getpid(), "p": u.points[0]}, jobs=2)
    pids = {r["pid"] for r in out.values()}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert [out[u]["p"] for u in units] == [0, 1, 2, 3]

    def work(u: Unit) -> dict:
        if u.points[0] == 1:
            time.sleep(0.3)  # fails after unit 0, which was handed out first, has finished
            raise ValueError("bad unit")
        return {"p": u.points[0]}

    store = UnitStore(tmp_path)
    with pytest.raises(ValueError, match="bad unit"):
        run_units(units[:2], work, store=store, jobs=2)
    assert store.get(units[0]) == {"p": 0} and store.get(units[1]) is None


def test_jobs_must_be_a_positive_integer(scene_task: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="jobs must be an integer"):
        evaluate([BandEnergyModel()], [scene_task], _config(tmp_path, jobs=0))


def test_a_damaged_unit_file_is_trained_again(tmp_path: Path) -> None:
    store = UnitStore(tmp_path)
    unit = Unit(1, (2,), stage=1)
    store.put(unit, {"valid": [np.float32(0.5)]})
    assert store.get(unit) == {"valid": [0.5]}
    (tmp_path / f"{unit.name}.json").write_text('{"valid": [0.')
    assert store.get(unit) is None
    out = run_units([unit], lambda u: {"valid": [0.25]}, store=store)
    assert out[unit] == {"valid": [0.25]} == store.get(unit)


def test_one_unit_per_grid_point_trains_what_one_stack_of_the_grid_trains(
    event_task: Path, tmp_path: Path
) -> None:
    """Points are mapped to their own units correctly: the split grid search scores every grid
    point as the stacked one does (up to float rounding), and picks the same point."""
    task = load_task(event_task)
    emb = embed_task(BandEnergyModel(), task, tmp_path, "band", progress=False)
    config = ProbeConfig(**{**HEAR.__dict__, "grid_points": 4, "max_epochs": 9})
    split = probes.run_probe(task, emb, config, split_grid=True)
    whole = probes.run_probe(task, emb, config, split_grid=False)
    valid = [g["valid_mean"] for g in split.grid]
    assert len(set(np.round(valid, 6))) > 1  # the points really differ
    np.testing.assert_allclose(valid, [g["valid_mean"] for g in whole.grid], atol=1e-3)
    assert split.hparams == whole.hparams
    assert [g["hparams"] for g in split.grid] == [g["hparams"] for g in whole.grid]


@pytest.mark.parametrize("task_fixture", ["scene_task", "event_task"])
def test_linear_folds_in_other_processes_give_the_same_probe(
    task_fixture: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """``--jobs auto`` runs the linear probe's folds in worker processes (make demo does): the
    solve is deterministic, so every fold's run is the one a single process gives."""
    task = request.getfixturevalue(task_fixture)
    quiet = {"log": lambda _: None}
    linear = ProbeConfig(protocol="linear")
    runs = []
    for jobs in (1, 2):
        config = EvalConfig(out=tmp_path / str(jobs), probe=linear, progress=False, report=False,
                            jobs=jobs)  # fmt: skip
        [record] = evaluate([BandEnergyModel()], [task], config, **quiet)
        runs.append([(r["fold"], r["l2"], sorted(r["test"].items())) for r in record["runs"]])
    assert runs[0] == runs[1] and len(runs[0]) >= 3
