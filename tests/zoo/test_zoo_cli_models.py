"""`echoic models` lists every registered model with kind, sizes, rate, licence, availability."""

from __future__ import annotations

import json

from echoic.checkpoint import MODELS
from echoic.cli.main import main
from echoic.zoo.registry import ZOO


def test_models_table_lists_every_model(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["name", "kind", "dim", "rate", "available", "licence"]
    for name in [*ZOO.names(), *MODELS.names()]:
        assert any(line.split()[:1] == [name] for line in lines), name
    assert "NON-COMMERCIAL" in out  # openwakeword's weights


def test_models_json(capsys):
    assert main(["models", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_name = {r["name"]: r for r in rows}
    assert by_name["logmel_stats"]["kind"] == "baseline"
    assert by_name["logmel_stats"]["embedding_size"] == 128
    assert by_name["mfcc_stats"]["embedding_size"] == 120
    assert by_name["aisfx"]["sample_rate"] == 44100 and by_name["aisfx"]["kind"] == "peer"
    assert by_name["echoic-default"]["kind"] == "echoic"
    for name, entry in ZOO.items():
        assert by_name[name]["available"] == entry.available()
        if not entry.available():
            assert by_name[name]["install"] and "\n" not in by_name[name]["status"]
