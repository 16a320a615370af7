"""`echoic tokenizer fit | list | metrics` and `echoic tokenize`, end to end on a tiny model."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from echoic.checkpoint import save
from echoic.cli.main import main
from echoic.tokenizers import load_tokenizer


@pytest.fixture
def setup(tmp_path, tiny_model, make_tone):
    model_dir = save(tiny_model, tmp_path / "model")
    audio = tmp_path / "audio"
    audio.mkdir()
    for i in range(4):
        sf.write(audio / f"c{i}.wav", make_tone(1.0 + 0.3 * i, freq=150 + 200 * i, seed=i), 16000)
    return tmp_path, str(model_dir), audio


def test_fit_tokenize_and_resume(setup, capsys) -> None:
    root, model, audio = setup
    tok = root / "km"
    args = ["tokenizer", "fit", "--tokenizer", "kmeans", "--model", model, "--layer", "1"]
    assert main([*args, str(audio), "--set", "n_clusters=3", "--out", str(tok)]) == 0
    assert "frames/s" in capsys.readouterr().out
    tokenizer = load_tokenizer(tok)
    assert tokenizer.codebook_sizes == (3,) and tokenizer.source["model"] == model
    assert tokenizer.source["layer"] == 1 and tokenizer.frame_hop_ms is not None
    out = root / "tokens.parquet"
    assert main(["tokenize", str(audio), "--tokenizer", str(tok), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "overall: 4 file(s)" in printed and "bits/s" in printed
    assert pq.read_table(out).num_rows == 4
    assert (root / "tokens.rates.csv").read_text().count("\n") == 5
    steps = int(tokenizer.steps)
    assert main([*args, str(audio), "--resume", "--out", str(tok)]) == 0
    assert int(load_tokenizer(tok).steps) > steps  # k-means went on from the saved state


def test_beats_acoustic_fits_on_features_towards_the_layer(setup) -> None:
    root, model, audio = setup
    settings = ["dim=8", "heads=2", "codebook_size=4", "codebook_dim=4", "steps=3"]
    settings += ["segment_frames=4", "batch_size=2"]
    args = ["tokenizer", "fit", "--tokenizer", "beats_acoustic", "--model", model, str(audio)]
    for setting in settings:
        args += ["--set", setting]
    assert main([*args, "--out", str(root / "beats")]) == 0
    tokenizer = load_tokenizer(root / "beats")
    assert tokenizer.source["input"] == "features"
    assert tokenizer.target_dim != tokenizer.input_dim  # the layer's width, not the input's


def write_task(root, make_tone) -> str:
    """A 3-label multiclass task in the HEAR layout (3 folds)."""
    task = root / "task"
    (task / "16000").mkdir(parents=True)
    meta = {"task_name": "tones", "embedding_type": "scene", "prediction_type": "multiclass"}
    meta |= {"split_mode": "new_split_kfold", "evaluation": ["top1_acc"]}
    meta |= {"splits": ["fold00", "fold01", "fold02"]}
    (task / "task_metadata.json").write_text(json.dumps(meta))
    (task / "labelvocabulary.csv").write_text("idx,label\n0,low\n1,mid\n2,high\n")
    freqs = {"low": 150.0, "mid": 900.0, "high": 3000.0}
    for f, fold in enumerate(meta["splits"]):
        (task / "16000" / fold).mkdir()
        labels = {}
        for label, freq in freqs.items():
            name = f"{label}{f}.wav"
            sf.write(task / "16000" / fold / name, make_tone(1.0, freq=freq, seed=f), 16000)
            labels[name] = [label]
        (task / f"{fold}.json").write_text(json.dumps(labels))
    return str(task)


def test_metrics_scores_a_task(setup, make_tone, capsys) -> None:
    root, model, audio = setup
    tok = root / "km"
    fit = ["tokenizer", "fit", "--tokenizer", "kmeans", "--model", model, str(audio)]
    assert main([*fit, "--set", "n_clusters=4", "--out", str(tok)]) == 0
    out = root / "scores.json"
    task = write_task(root, make_tone)
    args = ["tokenizer", "metrics", "--tokenizer", str(tok), "--tasks", task, "--out", str(out)]
    assert main(args) == 0
    (scores,) = json.loads(out.read_text())
    assert scores["task"] == "tones" and scores["clips"] == 9 and scores["labels"] == 3
    for key in ("frame_nmi", "frame_purity", "bag_nmi", "bag_purity"):
        assert 0.0 <= scores[key] <= 1.0
    assert scores["frame_purity"] >= 1 / 3 - 1e-9  # at least the largest label's share
    assert "bag-of-tokens NMI" in capsys.readouterr().out
    assert np.isfinite(scores["frame_nmi"])


def test_list_names_every_tokenizer(capsys) -> None:
    assert main(["tokenizer", "list"]) == 0
    printed = capsys.readouterr().out
    for name in ("random_projection", "kmeans", "rvq", "mvq", "beats_acoustic"):
        assert f"{name}:" in printed
