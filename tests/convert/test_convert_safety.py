"""Pickled checkpoints are never executed without --trust-pickle (issue 17, item 3)."""

from __future__ import annotations

import argparse
import fractions
import json

import pytest
import torch

from echoic.convert import UnsafePickleError, convert
from echoic.convert.safe_pickle import load_pickle


class WritesAFile:
    """A malicious pickle payload: unpickling it runs ``exec``, which writes a file."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (exec, (f"open({self.target!r}, 'w').write('pwned')",))


def hf_folder_with(tmp_path, payload) -> object:
    """A transformers wav2vec2 folder whose pytorch_model.bin is ``payload``."""
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "wav2vec2"}))
    torch.save(payload, folder / "pytorch_model.bin")
    return folder


def test_a_malicious_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned.txt"
    folder = hf_folder_with(tmp_path, {"weight": torch.zeros(2), "x": WritesAFile(str(marker))})
    with pytest.raises(UnsafePickleError) as caught:
        convert(folder, tmp_path / "out")
    message = str(caught.value)
    assert "builtins.exec" in message and "--trust-pickle" in message
    assert "\n" not in message  # one line
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_the_cli_refuses_with_one_line_and_writes_nothing(tmp_path, capsys):
    from echoic.cli.main import main

    marker = tmp_path / "pwned.txt"
    folder = hf_folder_with(tmp_path, {"x": WritesAFile(str(marker))})
    assert main(["convert", str(folder), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "builtins.exec" in err and "--trust-pickle" in err
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_echoic_load_refuses_it_too(tmp_path, monkeypatch):
    import echoic

    monkeypatch.setenv("ECHOIC_CACHE", str(tmp_path / "cache"))
    marker = tmp_path / "pwned.txt"
    folder = hf_folder_with(tmp_path, {"x": WritesAFile(str(marker))})
    with pytest.raises(UnsafePickleError, match=r"builtins\.exec"):
        echoic.load(folder)
    assert not marker.exists()
    leftovers = list((tmp_path / "cache").rglob("*")) if (tmp_path / "cache").exists() else []
    assert not [p for p in leftovers if p.is_file()]


def test_allowlisted_globals_load_without_trust(tmp_path):
    """fairseq-style training state: argparse.Namespace, numpy scalars and dtypes."""
    import numpy as np

    payload = {
        "args": argparse.Namespace(encoder_layers=12, normalize=True),
        "extra": {"best": [np.float64(0.5), np.float32(2.0)], "step": np.int64(7)},
        "model": {"w": torch.arange(3.0)},
    }
    torch.save(payload, tmp_path / "ckpt.pt")
    loaded = load_pickle(tmp_path / "ckpt.pt")
    assert loaded["args"].encoder_layers == 12 and loaded["extra"]["step"] == 7
    assert torch.equal(loaded["model"]["w"], torch.arange(3.0))


def test_other_globals_need_trust_pickle(tmp_path):
    torch.save({"ratio": fractions.Fraction(1, 3)}, tmp_path / "ckpt.pt")
    with pytest.raises(UnsafePickleError, match=r"fractions\.Fraction.*--trust-pickle"):
        load_pickle(tmp_path / "ckpt.pt")
    assert load_pickle(tmp_path / "ckpt.pt", trust_pickle=True)["ratio"] == fractions.Fraction(1, 3)
