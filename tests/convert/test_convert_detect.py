"""Format auto-detection, `echoic convert`, and `echoic.load` of a public checkpoint (converted once
into the cache, then reused)."""

from __future__ import annotations

import json

import pytest
import torch
from convert_helpers import HF_CASES

import echoic
from echoic.cards import converted_dir, find_card
from echoic.checkpoint import EchoicModel, read_config, save
from echoic.convert import CONVERTERS, ConversionError, detect, find_converter


@pytest.mark.parametrize("case", sorted(HF_CASES))
def test_every_transformers_family_is_detected(case, hf_folder):
    folder, _ = hf_folder(case)
    for path in (folder, folder / "config.json", folder / "model.safetensors"):
        found = detect(path)
        assert found is not None and found.name == "hf-wav2vec2", path


def test_other_folders_and_files_are_not_detected(tmp_path, tiny_model_factory):
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (tmp_path / "bert" / "model.safetensors").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "no_weights").mkdir()
    (tmp_path / "no_weights" / "config.json").write_text(json.dumps({"model_type": "wavlm"}))
    save(tiny_model_factory(encoder="wav_test"), tmp_path / "echoic")
    for path in ("bert", "notes.txt", "no_weights", "echoic"):
        assert detect(tmp_path / path) is None, path
    assert converted_dir(tmp_path / "echoic") is None  # echoic directories load as they are
    with pytest.raises(ConversionError, match=r"no converter recognises.*hf-wav2vec2"):
        find_converter(tmp_path / "notes.txt")


def test_a_named_format_must_read_the_path(hf_folder, tmp_path):
    folder, _ = hf_folder("wavlm")
    assert find_converter(folder, "hf-wav2vec2").name == "hf-wav2vec2"
    with pytest.raises(ConversionError, match="Did you mean 'hf-wav2vec2'"):
        find_converter(folder, "hf-wav2vec")
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(ConversionError, match="not a hf-wav2vec2 checkpoint"):
        find_converter(tmp_path / "x.txt", "hf-wav2vec2")


def test_every_converter_declares_itself():
    from echoic.convert.base import Converter

    assert "hf-wav2vec2" in CONVERTERS.names()
    for name, converter in CONVERTERS.items():
        assert isinstance(converter, Converter) and converter.name == name
        assert converter.description and converter.reference and converter.version >= 1


def test_echoic_load_converts_once_into_the_cache(hf_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("ECHOIC_CACHE", str(tmp_path / "cache"))
    folder, reference = hf_folder("wavlm")
    model = echoic.load(folder)
    assert isinstance(model, EchoicModel) and not model.training
    cached = sorted((tmp_path / "cache" / "converted").iterdir())
    assert len(cached) == 1 and cached[0].name.endswith("-hf-wav2vec2-v1")
    stamp = (cached[0] / "model.safetensors").stat().st_mtime_ns
    again = echoic.load(str(folder / "config.json"))  # any path inside the folder
    assert (cached[0] / "model.safetensors").stat().st_mtime_ns == stamp
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    card = find_card(folder)
    assert card.kind == "converted" and card.name == str(folder)
    assert card.embedding_size == reference.config.hidden_size
    assert read_config(cached[0]).provenance["format"] == "hf-wav2vec2"


def test_the_cli_converts_with_and_without_a_format(hf_folder, tmp_path, capsys):
    from echoic.cli.main import main

    folder, _ = hf_folder("data2vec-audio")
    assert main(["convert", str(folder), "--out", str(tmp_path / "a")]) == 0
    assert main(["convert", "hf-wav2vec2", str(folder), "--out", str(tmp_path / "b")]) == 0
    printed = capsys.readouterr().out
    assert "hf-wav2vec2" in printed and "data2vec_audio on waveform" in printed
    assert read_config(tmp_path / "a") == read_config(tmp_path / "b")
    assert main(["convert", "--list"]) == 0
    assert "hf-wav2vec2" in capsys.readouterr().out
