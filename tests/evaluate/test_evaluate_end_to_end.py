"""End to end: small-mode real tasks and a tiny echoic model through `evaluate` and the CLI."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from evaluate_helpers import BandEnergyModel

from echoic.evaluate import EvalConfig, ProbeConfig, evaluate
from echoic.evaluate.linear import DEFAULT_L2_PATH

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("ECHOIC_DATA", REPO / ".." / "shared" / "data"))  # as conftest
TINY = ProbeConfig(protocol="hear", seeds=2, max_epochs=6, hidden_dim=32, grid_points=3)


@pytest.fixture(scope="module")
def small_tasks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (DATA / "esc50" / "meta.csv").is_file():
        pytest.skip(f"real-audio data not found at {DATA}")
    from echoic.tasks.writer import build_tasks

    out = tmp_path_factory.mktemp("small_tasks")
    build_tasks(
        ["esc50", "esc50_scenes", "librispeech_speakers"],
        out,
        DATA.resolve(),
        16000,
        "small",
        progress=False,
    )
    return out


def test_small_real_tasks_with_tiny_model(
    small_tasks: Path, tmp_path: Path, tiny_model_factory, capsys
) -> None:
    from echoic.embed.embedder import Embedder

    model = Embedder(tiny_model_factory(0))
    config = EvalConfig(out=tmp_path / "out", probe=TINY, progress=False)
    records = evaluate([model], [small_tasks], config)
    assert sorted(r["task"] for r in records) == ["esc50", "esc50_scenes", "librispeech_speakers"]
    by_task = {r["task"]: r for r in records}
    esc = by_task["esc50"]
    assert len(esc["runs"]) == 5 * 2  # folds x seeds
    assert {r["fold"] for r in esc["runs"]} == {f"fold0{i}" for i in range(5)}
    assert len(esc["grid"]) == 3 and esc["hparams"]["hidden_layers"] in (1, 2)
    assert 0.0 <= esc["scores"]["top1_acc"]["mean"] <= 1.0
    assert esc["scores"]["top1_acc"]["std"] >= 0.0
    assert esc["confusion"]["matrix"] and len(esc["confusion"]["labels"]) == len(
        esc["confusion"]["matrix"]
    )
    scenes = by_task["esc50_scenes"]
    assert set(scenes["scores"]) == {
        "event_onset_200ms_fms",
        "event_onset_50ms_fms",
        "segment_1s_er",
    }
    assert all("postprocessing" in r for r in scenes["runs"])
    files = sorted(p.name for p in (tmp_path / "out").glob("*/*.json"))
    assert len(files) == 3
    rows = list(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    assert "| esc50 | top1_acc | hear |" in (tmp_path / "out" / "results.md").read_text()
    assert {r["task"] for r in rows if r["primary"] == "1"} == set(by_task)
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count("<img") >= 4  # scores, heatmap, 2 confusion matrices (esc50, speakers)
    printed = capsys.readouterr().out
    assert "esc50_scenes" in printed and "report:" in printed

    config.resume = False  # train the probes again: the embeddings come from the cache
    again = evaluate([model], [small_tasks], config)
    assert all(r["timings"]["embeddings_cached"] for r in again)


def test_cli_eval_runs_knn_and_linear_on_synthetic_task(
    scene_task: Path, event_task: Path, tmp_path: Path, tiny_model_factory
) -> None:
    from echoic.checkpoint import save
    from echoic.cli.main import main

    model_dir = tmp_path / "tiny"
    save(tiny_model_factory(0), model_dir)
    out = tmp_path / "cli"
    args = [
        "eval",
        "--model",
        str(model_dir),
        "--tasks",
        str(scene_task),
        str(event_task),
        "--out",
        str(out),
        "--quiet",
        "--no-report",
    ]
    assert main([*args, "--protocol", "knn"]) == 0
    assert main([*args, "--protocol", "linear", "--seeds", "2", "--max-epochs", "5"]) == 0
    records = [json.loads(p.read_text()) for p in out.glob("*/*.json")]
    assert sorted((r["task"], r["protocol"]) for r in records) == [
        ("bursts", "knn"),
        ("bursts", "linear"),
        ("tones", "knn"),
        ("tones", "linear"),
    ]
    linear = next(r for r in records if r["task"] == "tones" and r["protocol"] == "linear")
    # the linear probe is deterministic (an exact convex solve): one run per fold whatever the seeds
    assert len(linear["runs"]) == 3 and "L-BFGS" in linear["hparams"]["solver"]
    assert all(run["l2"] in DEFAULT_L2_PATH for run in linear["runs"])


def test_probes_separate_tones_with_a_simple_model(scene_task: Path, tmp_path: Path) -> None:
    """Three tone frequencies are trivially separable in band energies: every probe gets ~all."""
    for protocol, epochs in (("knn", 0), ("linear", 400), ("hear", 60)):
        probe = ProbeConfig(protocol=protocol, max_epochs=epochs, hidden_dim=64, patience=400)
        [rec] = evaluate(
            [BandEnergyModel()],
            [scene_task],
            EvalConfig(out=tmp_path / protocol, probe=probe, progress=False, report=False),
            log=lambda _: None,
        )
        assert rec["scores"]["top1_acc"]["mean"] >= 0.95, (protocol, rec["scores"])


def test_a_rerun_skips_finished_results_unless_the_config_changed(
    scene_task: Path, tmp_path: Path
) -> None:
    lines: list[str] = []
    config = EvalConfig(
        out=tmp_path,
        probe=ProbeConfig(protocol="linear", seeds=1, max_epochs=5),
        progress=False,
        report=False,
    )
    [first] = evaluate([BandEnergyModel()], [scene_task], config, log=lines.append)
    path = next(tmp_path.glob("*/*.json"))
    stamp = path.stat().st_mtime_ns
    [again] = evaluate([BandEnergyModel()], [scene_task], config, log=lines.append)
    assert path.stat().st_mtime_ns == stamp  # not written again
    assert sum("(done earlier)" in line for line in lines) == 1
    assert again["scores"] == first["scores"]
    config.probe.linear_l2_path = (1.0, 0.1)  # another config: trained again
    [other] = evaluate([BandEnergyModel()], [scene_task], config, log=lines.append)
    assert path.stat().st_mtime_ns != stamp and len(other["runs"]) == len(first["runs"])
    assert {run["l2"] for run in other["runs"]} <= {1.0, 0.1}
