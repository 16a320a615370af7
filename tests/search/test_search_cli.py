"""`echoic index` + `echoic search` end to end on audio embedded by `echoic embed`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from search_helpers import write_embeddings

from echoic.checkpoint import save
from echoic.cli.main import main
from echoic.data.testing import make_good_files

SR = 16000


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_model_factory):
    """A tiny model directory, 8 clips embedded with it (`echoic embed`) and their index."""
    root = tmp_path_factory.mktemp("search")
    model = save(tiny_model_factory(), root / "model")
    clips = make_good_files(root / "audio", 8, seconds=0.5)
    emb = root / "emb.parquet"
    assert (
        main(["embed", str(root / "audio"), "--model", str(model), "--out", str(emb), "--quiet"])
        == 0
    )
    index = root / "idx"
    args = ["index", "build", str(emb), "--out", str(index), "--model", str(model), "--quiet"]
    assert main(args) == 0
    return {"root": root, "model": model, "clips": clips, "emb": emb, "index": index}


def test_index_records_the_model(tiny):
    meta = json.loads((tiny["index"] / "index.json").read_text())
    assert meta["model"]["source"] == str(tiny["model"].resolve())
    assert meta["model"]["identity"].startswith("tiny-test-")
    assert meta["model"]["config"]["model"]["encoder"] == "vit_test"  # the model's config
    assert meta["count"] == 8 and meta["level"] == "scene"


def test_search_by_file_row_and_range_writes_json_and_csv(tiny, tmp_path, capsys):
    clip = tiny["clips"][2]
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    out = tmp_path / "hits.json"
    missing = str(tmp_path / "missing.wav")
    queries = [str(clip), str(bad), "id:5", f"{clip}@0.1-0.4", missing, "99", f"{clip}@0.4-0.1"]
    assert main(["search", str(tiny["index"]), *queries, "-k", "3", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "skipped query" in captured.err and "corrupt.wav" in captured.err
    payload = json.loads(out.read_text())
    answered = {q["query"]: q for q in payload["queries"]}
    assert list(answered) == [str(clip), "id:5", f"{clip}@0.1-0.4"]  # the others are skipped
    first = answered[str(clip)]["hits"][0]
    assert first["path"] == str(clip.resolve()) and first["score"] == pytest.approx(1.0, abs=1e-4)
    assert answered["id:5"]["hits"][0]["id"] == 5
    assert len(answered[f"{clip}@0.1-0.4"]["hits"]) == 3
    errors = {e["query"]: e["error"] for e in payload["errors"]}
    assert set(errors) == {str(bad), missing, "99", f"{clip}@0.4-0.1"}
    assert "START < END" in errors[f"{clip}@0.4-0.1"]
    assert "row id 99 is not in the index; expected 0..7" in errors["99"]
    assert payload["score"] == "cosine similarity" and payload["k"] == 3
    csv_out = tmp_path / "hits.csv"
    assert main(["search", str(tiny["index"]), "id:0", "--out", str(csv_out), "--quiet"]) == 0
    with csv_out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8 and rows[0]["rank"] == "1" and rows[0]["id"] == "0"
    assert float(rows[0]["end_s"]) == pytest.approx(0.5)


def test_queries_of_another_model_are_refused(tiny, tmp_path, capsys, tiny_model_factory):
    other = save(tiny_model_factory(seed=1), tmp_path / "other")
    clip = str(tiny["clips"][0])
    assert main(["search", str(tiny["index"]), clip, "--model", str(other)]) == 1
    err = capsys.readouterr().err
    assert "refusing queries embedded by" in err and "not comparable" in err
    # a Parquet of another model, as a query: refused, the other queries still answered
    x = np.ones((2, 192), np.float32)
    foreign = write_embeddings(tmp_path / "foreign.parquet", x, identity="someone-else")
    assert (
        main(
            ["search", str(tiny["index"]), str(foreign), "id:1", "--out", str(tmp_path / "r.json")]
        )
        == 0
    )
    payload = json.loads((tmp_path / "r.json").read_text())
    assert [q["query"] for q in payload["queries"]] == ["id:1"]
    assert "refused: embedded by 'synthetic (test)'" in payload["errors"][0]["error"]
    # and `index add` of it is refused as a whole
    assert main(["index", "add", str(tiny["index"]), str(foreign), "--quiet"]) == 1
    assert "An index holds one model's vectors" in capsys.readouterr().err


def test_unknown_model_needs_model_flag(tiny, tmp_path, capsys):
    """The tiny model's label is no registered name: the index cannot rebuild it by itself."""
    index = tmp_path / "idx"
    assert main(["index", "build", str(tiny["emb"]), "--out", str(index), "--quiet"]) == 0
    assert "audio queries will need --model" in capsys.readouterr().out
    clip = str(tiny["clips"][1])
    assert main(["search", str(index), clip]) == 1
    assert "pass --model NAME_OR_DIR" in capsys.readouterr().err
    assert main(["search", str(index), clip, "--model", str(tiny["model"]), "-k", "1"]) == 0
    assert "id:0" not in capsys.readouterr().err
    # index add of the same Parquet again: nothing duplicated
    assert main(["index", "add", str(index), str(tiny["emb"]), "--quiet"]) == 0
    assert "added 0 vector(s) from 8 file row(s); 8 already indexed" in capsys.readouterr().out


def test_timestamp_index_finds_where_a_sound_is(tmp_path, capsys):
    """A 0.5-s tone burst planted at 12 s into 20 s of noise: a timestamp index finds it there."""
    rng = np.random.default_rng(0)
    audio = tmp_path / "audio"
    audio.mkdir()
    t = np.arange(SR // 2) / SR
    burst = 0.5 * np.sin(2 * np.pi * 1500.0 * t)
    long = 0.05 * rng.standard_normal(20 * SR)
    long[12 * SR : 12 * SR + len(t)] += burst
    sf.write(audio / "long.wav", long.astype(np.float32), SR)
    for i in range(3):  # decoys: noise, and a tone of another pitch
        decoy = 0.05 * rng.standard_normal(3 * SR)
        if i == 0:
            decoy[SR : SR + len(t)] += 0.5 * np.sin(2 * np.pi * 400.0 * t)
        sf.write(audio / f"decoy{i}.wav", decoy.astype(np.float32), SR)
    query = tmp_path / "query.wav"
    sf.write(query, (burst + 0.05 * rng.standard_normal(len(t))).astype(np.float32), SR)
    emb = tmp_path / "emb.parquet"
    embed = ["embed", str(audio), "--model", "logmel_stats", "--timestamps", "--out", str(emb)]
    assert main([*embed, "--quiet"]) == 0
    index = tmp_path / "idx"
    build = ["index", "build", str(emb), "--out", str(index), "--timestamps", "--quiet"]
    assert main([*build, "--window-s", "0.5", "--hop-s", "0.25", "--kind", "hnsw"]) == 0
    out = tmp_path / "hits.json"
    assert main(["search", str(index), str(query), "-k", "3", "--out", str(out), "--quiet"]) == 0
    hits = json.loads(out.read_text())["queries"][0]["hits"]
    assert Path(hits[0]["path"]).name == "long.wav"
    assert hits[0]["offset_s"] == pytest.approx(12.0)
    # the next nearest windows overlap the burst too (it spans [12, 12.5) s)
    assert all(h["offset_s"] < 12.5 and h["offset_s"] + h["duration_s"] > 12.0 for h in hits)
    meta = json.loads((index / "index.json").read_text())
    assert meta["level"] == "timestamp" and (meta["window_s"], meta["hop_s"]) == (0.5, 0.25)
    assert meta["model"]["source"] == "logmel_stats"  # found from the label
