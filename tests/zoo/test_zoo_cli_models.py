"""`echoic models` lists every model card with kind, sizes, rate, availability, origin, licence —
without building any model."""

from __future__ import annotations

import json
import time

from echoic.cards import CARDS, list_cards
from echoic.checkpoint import EchoicModel
from echoic.cli.main import main


def test_models_table_lists_every_card(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["name", "kind", "dim", "rate", "available", "origin", "licence"]
    for name in CARDS.names():
        assert any(line.split()[:1] == [name] for line in lines), name
    assert "NON-COMMERCIAL" in out  # openwakeword's weights
    assert "models/echoic-tiny/model.safetensors" in out  # the bundled models' origins
    assert "models/echoic-small/model.safetensors" in out


def test_models_json(capsys):
    assert main(["models", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == set(CARDS.names())
    assert by_name["logmel_stats"]["kind"] == "baseline"
    assert by_name["logmel_stats"]["embedding_size"] == 128
    assert by_name["mfcc_stats"]["embedding_size"] == 120
    assert by_name["aisfx"]["sample_rate"] == 44100 and by_name["aisfx"]["kind"] == "peer"
    tiny = by_name["echoic-tiny"]
    assert tiny["kind"] == "echoic" and tiny["embedding_size"] == 8 * 192
    assert (
        tiny["layer_sizes"] == [8 * 192] * 13 and tiny["architecture"] == "vit_tiny on kaldi_fbank"
    )
    assert len(tiny["origin"]["sha256"]) == 64 and tiny["origin"]["path"].endswith(".safetensors")
    small = by_name["echoic-small"]
    assert small["kind"] == "echoic" and small["embedding_size"] == 2048
    assert small["architecture"] == "byol_a on centred_mel"
    assert by_name["echoic-default"]["origin"] == small["origin"] != tiny["origin"]
    assert by_name["echoic-untrained-tiny"]["origin"]["sha256"] is None
    for name, card in CARDS.items():
        assert by_name[name]["available"] == card.available()
        if not card.available():
            assert by_name[name]["install"] and "\n" not in by_name[name]["status"]


def test_listing_builds_no_model(monkeypatch, capsys):
    """Every factory and EchoicModel.__init__ raise: listing (table and JSON) still works, fast."""

    def refuse(*args, **kwargs):
        raise AssertionError("echoic models must not build a model")

    monkeypatch.setattr(EchoicModel, "__init__", refuse)
    for card in list_cards():
        monkeypatch.setattr(card, "build", refuse)
    assert main(["models"]) == 0  # warm: imports and zoo discovery done
    start = time.perf_counter()
    assert main(["models"]) == 0
    assert main(["models", "--json"]) == 0
    seconds = time.perf_counter() - start
    capsys.readouterr()
    assert seconds < 1.0, f"listing every card took {seconds:.2f} s (expected < 1 s)"
