"""The model cards of well-known public checkpoints (``echoic.zoo.public``): listed by ``echoic
models`` without building or downloading anything, every contract field filled, unavailable until
their weights are here (building one then fails with one line saying how to get them), and — once
the weights are in the hub cache or the echoic weights folder — the same model as converting them."""

from __future__ import annotations

import json

import pytest
import torch
from hub_helpers import write_hub_cache
from mae_family_layouts import save_audiomae

import echoic
from echoic.cards import CARDS, ModelUnavailable
from echoic.checkpoint import EchoicModel, load_dir
from echoic.convert import CONVERTERS, convert
from echoic.types import Features
from echoic.zoo.public import NON_COMMERCIAL, PUBLIC

REQUIRED = {
    "wav2vec2-base": "facebook/wav2vec2-base",
    "hubert-base-ls960": "facebook/hubert-base-ls960",
    "wavlm-base-plus": "microsoft/wavlm-base-plus",
    "data2vec-audio-base": "facebook/data2vec-audio-base",
    "ast-audioset-0.4593": "MIT/ast-finetuned-audioset-10-10-0.4593",
    "whisper-tiny": "openai/whisper-tiny",
    "whisper-base": "openai/whisper-base",
    "beats-iter3": None,
    "dasheng-base": None,
    "passt-s-kd": None,
    "tera-960hr": None,
    "byol-a-2048": None,
    "m2d-vit-base": None,
    "eat-base-epoch30": None,
    "audiomae-base": None,
}


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("ECHOIC_CACHE", str(tmp_path / "echoic-cache"))
    return tmp_path


def test_every_public_card_lists_without_building_or_downloading(empty_caches, monkeypatch, capsys):
    import huggingface_hub

    from echoic.checkpoint import EchoicModel as Model
    from echoic.cli.main import main

    def refuse(*args, **kwargs):
        raise AssertionError("listing must not download or build")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)
    monkeypatch.setattr(Model, "__init__", refuse)
    assert main(["models", "--json"]) == 0
    rows = {row["name"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    assert main(["models"]) == 0
    table = capsys.readouterr().out
    for name, hub_id in REQUIRED.items():
        row = rows[name]
        assert row["kind"] == "converted" and name in table
        assert row["available"] is False and row["install"] and row["install"] in row["status"]
        assert row["licence"] and row["architecture"] and row["notes"]
        assert row["sample_rate"] in (16000, 32000) and row["embedding_size"] > 0
        assert len(row["layer_sizes"]) > 1 and row["origin"]["source"]
        assert row["origin"]["hub_id"] == hub_id
        card = CARDS.get(name)
        assert card.extra["format"] in CONVERTERS  # a converter reads it
        if hub_id:
            assert f"hf:{hub_id}" in row["install"]
        else:
            assert f"echoic convert {card.extra['format']} FILE" in row["install"]


def test_licences_mark_non_commercial_weights():
    licences = {card.name: card.licence for card in PUBLIC}
    for name in ("audiomae-base", "m2d-vit-base", "byol-a-2048"):
        assert NON_COMMERCIAL in licences[name], name
    for name in ("wav2vec2-base", "whisper-tiny", "eat-base-epoch30", "dasheng-base"):
        assert NON_COMMERCIAL not in licences[name]


def test_declared_sizes_are_the_published_ones():
    sizes = {card.name: (card.embedding_size, len(card.layer_sizes or ())) for card in PUBLIC}
    assert sizes["wav2vec2-base"] == (768, 13) and sizes["whisper-tiny"] == (384, 5)
    assert sizes["whisper-base"] == (512, 7) and sizes["tera-960hr"] == (768, 4)
    assert sizes["m2d-vit-base"] == (3840, 13)  # 5 frequency tokens concatenated
    assert sizes["byol-a-2048"] == (2048, 2)
    assert {card.sample_rate for card in PUBLIC if card.name.startswith("passt")} == {32000}


@pytest.mark.parametrize("name", ["hubert-base-ls960", "eat-base-epoch30"])
def test_building_without_weights_is_one_line_naming_how_to_get_them(empty_caches, name):
    with pytest.raises(ModelUnavailable) as caught:
        echoic.load(name)
    message = str(caught.value)
    assert "\n" not in message and CARDS.get(name).install in message
    assert (
        "hf:facebook/hubert-base-ls960" if name.startswith("hubert") else "echoic convert eat"
    ) in message


def test_a_file_card_loads_once_its_weights_are_in_the_weights_folder(empty_caches):
    weights = empty_caches / "echoic-cache" / "weights" / "audiomae" / "pretrained.pth"
    save_audiomae(weights)
    card = CARDS.get("audiomae-base")
    assert card.available() and card.unavailable_reason() is None
    model = echoic.load("audiomae-base")
    direct = load_dir(convert(weights, empty_caches / "direct"))
    values = torch.randn(1, 128, 96, generator=torch.Generator().manual_seed(0))
    feats = Features(values, torch.tensor([96]), 0.01, 0.0125)
    with torch.no_grad():
        for a, b in zip(model.encoder(feats).layers, direct.encoder(feats).layers, strict=True):
            assert torch.equal(a, b)


def test_a_hub_card_loads_offline_once_its_repository_is_cached(empty_caches, hf_folder):
    folder, _ = hf_folder("hubert")  # a tiny stand-in saved under the published repository id
    write_hub_cache(empty_caches / "hub", "facebook/hubert-base-ls960", folder)
    assert CARDS.get("hubert-base-ls960").available()
    model = echoic.load("hubert-base-ls960")
    assert isinstance(model, EchoicModel)
    same = echoic.load("hf:facebook/hubert-base-ls960")
    for a, b in zip(model.state_dict().values(), same.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("card", PUBLIC, ids=lambda c: c.name)
def test_declared_dims_are_the_encoder_registrys(card):
    """Each card declares its encoder's (width, depth, frequency tokens) so that listing needs no
    encoder registry; they must be what the registry gives for the card's encoder_config."""
    from echoic.encoders.registry import encoder_config

    overrides = {k: v for k, v in card.extra.items() if k not in ("encoder", "format", "sha256")}
    spec = encoder_config(card.extra["encoder"], **overrides).spec()
    concat = card.name == "m2d-vit-base"  # M2D's published embedding: frequency tokens concatenated
    assert card.embedding_size == spec.width * (spec.freq_tokens if concat else 1)
    assert card.layer_sizes == (card.embedding_size,) * (spec.depth + 1)
