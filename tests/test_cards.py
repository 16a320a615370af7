"""The model card registry: one name space, cards read from config.json without building, and
``echoic.load`` / ``checkpoint.load`` / the HEAR module resolving names and directories by card."""

from __future__ import annotations

import json

import pytest
import torch

import echoic
from echoic.cards import CARDS, ModelCard, directory_card, find_card, register_card
from echoic.checkpoint import CONFIG_FILE, EchoicModel, load, save
from echoic.embed.embedder import Embedder
from echoic.errors import CheckpointError


@pytest.mark.parametrize("embed", [{}, {"freq_pool": "concat"}, {"freq_pool": "mean", "layer": 1}])
def test_directory_card_sizes_match_the_built_embedder(tmp_path, tiny_model, embed):
    save(tiny_model, tmp_path / "m", embed=embed)
    card = find_card(tmp_path / "m")
    assert card.kind == "echoic" and card.name == str(tmp_path / "m")
    assert card.architecture == "vit_test on kaldi_fbank"
    embedder = Embedder(load(tmp_path / "m"))
    assert (card.sample_rate, card.embedding_size) == (
        embedder.sample_rate,
        embedder.embedding_size,
    )
    assert card.layer_sizes == (card.embedding_size,) * (tiny_model.encoder.config.depth + 1)
    assert card.origin.path == str(tmp_path / "m" / "model.safetensors")
    assert card.origin.sha256 and len(card.origin.sha256) == 64


def test_echoic_load_keeps_returning_echoic_models(tmp_path, tiny_model):
    save(tiny_model, tmp_path / "m")
    assert type(echoic.load(tmp_path / "m")) is EchoicModel
    tiny = echoic.load("echoic-tiny")
    assert type(tiny) is EchoicModel and tiny.config.name == "echoic-tiny" and not tiny.training


def test_converted_directory_reads_converted(tmp_path, tiny_model):
    provenance = {"converted_from": "ExampleNet checkpoint example.pt", "hub_id": "org/example"}
    save(tiny_model, tmp_path / "c", provenance=provenance, licence="MIT")
    card = find_card(tmp_path / "c")
    assert card.kind == "converted" and card.licence == "MIT"
    assert card.origin.hub_id == "org/example" and card.origin.short() == "org/example"
    assert "ExampleNet" in card.origin.source
    model = echoic.load(tmp_path / "c")
    assert isinstance(model, EchoicModel)
    assert Embedder(model).embedding_size == card.embedding_size


def test_baselines_load_as_embedding_models_but_not_as_echoic_models():
    model = echoic.load("logmel_stats")
    assert model.embedding_size == CARDS.get("logmel_stats").embedding_size == 128
    with pytest.raises(CheckpointError, match=r"baseline model.*echoic\.load\('logmel_stats'\)"):
        load("logmel_stats")


def test_unknown_names_and_directories_name_the_nearest(tmp_path, tiny_model):
    with pytest.raises(CheckpointError, match="Did you mean 'logmel_stats'"):
        echoic.load("logmel_stat")
    with pytest.raises(CheckpointError, match="Did you mean 'echoic-untrained-tiny'"):
        find_card("echoic-untrained-tinyy")
    save(tiny_model, tmp_path / "m")
    raw = json.loads((tmp_path / "m" / CONFIG_FILE).read_text())
    raw["model"]["encoder"] = "vit_tset"
    (tmp_path / "m" / CONFIG_FILE).write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match="Did you mean 'vit_test'"):
        directory_card(tmp_path / "m")


def test_one_name_space_for_every_kind(monkeypatch):
    from echoic.zoo.registry import ZOO, ZooEntry, register

    CARDS.names()  # discover the zoo first: the copy below is restored after the test
    monkeypatch.setattr(CARDS, "_entries", dict(CARDS._entries))
    clash = ModelCard("echoic-tiny", "baseline", "MIT", lambda: None, 16000, 4)
    with pytest.raises(ValueError, match="registered twice"):
        register_card(clash)
    with pytest.raises(ValueError, match="kind must be one of"):
        ModelCard("x", "pretrained", "MIT", lambda: None)
    with pytest.raises(ValueError, match="src/echoic/models"):
        register(ZooEntry("zoo_echoic", "echoic", "MIT", lambda: None, 16000, 4))
    assert "echoic-tiny" in CARDS and "echoic-tiny" not in ZOO and "logmel_stats" in ZOO
    assert set(ZOO.names()) == {n for n, c in CARDS.items() if c.kind in ("baseline", "peer")}


def test_default_card_is_the_bundled_model():
    default, small = CARDS.get("echoic-default"), CARDS.get("echoic-small")
    assert default.origin == small.origin and default.embedding_size == small.embedding_size == 2048
    assert CARDS.get("echoic-tiny").embedding_size == 1536  # still bundled, by name
    assert "default" in default.notes
    untrained = CARDS.get("echoic-untrained-tiny")
    assert untrained.embedding_size == 192 and "UNTRAINED" in untrained.notes
    assert untrained.origin.path is None and untrained.origin.sha256 is None
    torch.manual_seed(3)
    expected = torch.rand(1)
    torch.manual_seed(3)
    untrained.build()  # leaves the global random state alone
    assert torch.equal(torch.rand(1), expected)


def test_hear_module_resolves_names_by_card():
    from echoic import hear

    with pytest.raises(CheckpointError, match="echoic eval --model logmel_stats"):
        hear.load_model("logmel_stats")
    with pytest.raises(CheckpointError, match="Did you mean 'echoic-tiny'"):
        hear.load_model("echoic-tny")


# ---------------------------------------------------------------- sizes declared without torch
def test_save_declares_the_sizes_and_a_stale_declaration_is_recomputed(tmp_path, tiny_model):
    from echoic.checkpoint import compute_sizes
    from echoic.model_format import read_config, stored_sizes

    save(tiny_model, tmp_path / "m", embed={"freq_pool": "concat"})
    config = read_config(tmp_path / "m")
    stored = stored_sizes(tmp_path / "m", config)
    width, freq = tiny_model.encoder.config.dim, tiny_model.encoder.spec.freq_tokens
    assert stored == (16000, width * freq, (width * freq,) * (tiny_model.encoder.config.depth + 1))
    # hand-edited recommended pooling: the stored block no longer matches its fields
    raw = json.loads((tmp_path / "m" / CONFIG_FILE).read_text())
    raw["model"]["embed"]["freq_pool"] = "mean"
    (tmp_path / "m" / CONFIG_FILE).write_text(json.dumps(raw))
    edited = read_config(tmp_path / "m")
    assert stored_sizes(tmp_path / "m", edited) is None
    assert find_card(tmp_path / "m").embedding_size == width == compute_sizes(edited)[1]


def test_every_echoic_card_declares_the_sizes_its_registries_compute():
    """The bundled models' config.json ``card`` blocks and the untrained card's constant are what
    the encoder and frontend registries give (so listing them needs neither)."""
    from echoic.cards import UNTRAINED_TINY, UNTRAINED_TINY_SIZES
    from echoic.checkpoint import compute_sizes
    from echoic.model_format import BUNDLED_DIR, read_config, stored_sizes

    assert UNTRAINED_TINY_SIZES == compute_sizes(UNTRAINED_TINY)
    bundled = sorted(p.parent for p in BUNDLED_DIR.glob(f"*/{CONFIG_FILE}"))
    assert bundled, "no bundled model found"
    for folder in bundled:
        config = read_config(folder)
        assert stored_sizes(folder, config) == compute_sizes(config), folder
    for card in CARDS.items():
        if card[1].kind == "echoic" and card[1].origin.path:
            config = read_config(str(card[1].origin.path).rsplit("/", 1)[0])
            declared = (card[1].sample_rate, card[1].embedding_size, card[1].layer_sizes)
            assert declared == compute_sizes(config), card[0]


def test_lazy_builders_import_on_call_and_name_their_target():
    from echoic.cards import lazy

    build = lazy("echoic.zoo.logmel_stats:LogMelStats")
    card = ModelCard("lazy-example", "baseline", "MIT", build, 16000, 128)
    assert card.architecture == "echoic.zoo.logmel_stats.LogMelStats"
    assert type(build()).__name__ == "LogMelStats"
    with pytest.raises(ValueError, match=r"package\.module:attribute"):
        lazy("echoic.zoo.logmel_stats.LogMelStats")
