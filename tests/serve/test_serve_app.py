"""The explorer's API through Starlette's TestClient: map, neighbours, audio, thumbnails, uploads."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from serve_helpers import Collection, tree_state
from starlette.testclient import TestClient

from echoic.cli.main import main
from echoic.serve.app import allowed_hosts, create_app
from echoic.serve.explorer import Explorer, ExplorerConfig
from echoic.serve.projection import MAP_FILE
from echoic.serve.server import exposure_warning


@pytest.fixture(scope="module")
def explorer(collection: Collection) -> Explorer:
    return Explorer(ExplorerConfig(index=collection.index, k=5))


@pytest.fixture(scope="module")
def client(explorer: Explorer) -> TestClient:
    return TestClient(create_app(explorer), base_url="http://127.0.0.1:8765")


def row_of(explorer: Explorer, path: Path) -> int:
    return explorer.paths.index(str(path))


def test_map_covers_every_row_with_labels_folders_and_clusters(client, explorer, collection):
    body = client.get("/api/map").json()
    n = len(explorer)
    assert sorted(body["ids"]) == list(range(n)) and len(body["x"]) == len(body["y"]) == n
    assert all(-0.04 <= v <= 1.04 for v in body["x"] + body["y"])
    assert body["method"] in ("pca", "umap")
    labels = body["schemes"]["label"]
    assert set(labels["names"]) == {"low", "high", "hiss", "rumble", "(no label)"}
    for row, code in zip(body["ids"], labels["codes"], strict=True):  # the HEAR json's labels
        expected = collection.labels.get(explorer.paths[row], "(no label)")
        assert labels["names"][code] == expected
    folders = body["schemes"]["folder"]
    assert set(folders["names"]) == {"tones", "noises"}
    assert body["default_scheme"] == "label"  # few enough labels to colour
    assert sum(body["schemes"]["cluster"]["counts"]) == n


def test_map_is_cached_beside_the_index(explorer, collection):
    assert (collection.index / MAP_FILE).is_file()
    again = Explorer(ExplorerConfig(index=collection.index, load_model=False))
    assert again.map.cached and np.array_equal(again.map.xy, explorer.map.xy)


def test_map_separates_the_labels(client, explorer, collection):
    """Clips of one label sit closer to each other on the map than to clips of another."""
    body = client.get("/api/map").json()
    xy = np.stack([body["x"], body["y"]], 1)
    label = [collection.labels.get(explorer.paths[r]) for r in body["ids"]]
    centres = {
        v: xy[[i for i, x in enumerate(label) if x == v]].mean(0) for v in set(label) - {None}
    }
    assert max(np.ptp(list(centres.values()), axis=0)) > 0.3  # the labels are spread out


def test_neighbours_leave_the_query_out_and_share_its_label(client, explorer, collection):
    for path, label in collection.labels.items():
        row = row_of(explorer, Path(path))
        body = client.get(f"/api/neighbours/{row}?k=4").json()
        assert body["query"]["id"] == row and body["query"]["label"] == label
        hits = body["hits"]
        assert [h["rank"] for h in hits] == [1, 2, 3, 4]
        assert row not in [h["id"] for h in hits]
        scores = [h["score"] for h in hits]
        assert scores == sorted(scores, reverse=True)
        assert hits[0]["label"] == label, (path, hits[0])
        assert not hits[0]["name"].startswith("/")  # names are relative to the collection


def test_audio_is_the_indexed_file_and_supports_ranges(client, explorer, collection):
    path = next(iter(collection.labels))
    row = row_of(explorer, Path(path))
    r = client.get(f"/api/audio/{row}")
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    assert r.content == Path(path).read_bytes()
    part = client.get(f"/api/audio/{row}", headers={"Range": "bytes=0-3"})
    assert part.status_code == 206 and part.content == b"RIFF"


def test_thumbnail_is_a_png_of_the_clip(client, explorer, collection):
    tone = next(p for p, v in collection.labels.items() if v == "high")
    hiss = next(p for p, v in collection.labels.items() if v == "hiss")
    images = {}
    for path in (tone, hiss):
        r = client.get(f"/api/thumbnail/{row_of(explorer, Path(path))}")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(r.content))
        assert image.size == (240, 80) and image.mode == "RGB"
        images[path] = np.asarray(image, np.float32)[28:]  # the spectrogram part
    # a pure tone is one bright line; noise lights the whole spectrogram
    bright = {p: (im.mean(-1) > 128).mean() for p, im in images.items()}
    assert bright[hiss] > 3 * bright[tone]


def test_upload_finds_the_clip_itself(client, explorer, collection):
    path = Path(next(p for p, v in collection.labels.items() if v == "rumble"))
    r = client.post(f"/api/query?k=3&name={path.name}", content=path.read_bytes())
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert hits[0]["id"] == row_of(explorer, path) and hits[0]["score"] == pytest.approx(
        1, abs=1e-4
    )
    assert r.json()["query"]["duration_s"] == pytest.approx(0.5, abs=1e-3)
    assert [h["label"] for h in hits] == ["rumble"] * 3


def test_info_describes_the_index(client, explorer):
    info = client.get("/api/info").json()
    assert info["count"] == len(explorer) and info["uploads"] is True
    assert info["model"].startswith("logmel_stats") and info["score"] == "cosine similarity"
    assert set(info["schemes"]) == {"label", "folder", "cluster"}


def test_page_and_its_static_files_carry_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and "echoic explorer" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind)
    assert "http" not in page.text.replace("http-equiv", "")  # nothing from elsewhere (no CDN)


def test_explorer_never_writes_into_the_collection(collection, explorer):
    before = tree_state(collection.audio)
    client = TestClient(create_app(explorer), base_url="http://127.0.0.1:8765")
    for row in range(len(explorer)):
        client.get(f"/api/audio/{row}")
        client.get(f"/api/thumbnail/{row}")
        client.get(f"/api/neighbours/{row}")
    clip = Path(next(iter(collection.labels)))
    assert client.post("/api/query?name=x.wav", content=clip.read_bytes()).status_code == 200
    assert client.post("/api/query?name=x.wav", content=b"junk").status_code == 422
    assert tree_state(collection.audio) == before


def test_host_checks_and_the_warning_for_other_binds(explorer):
    assert exposure_warning("127.0.0.1") is None and exposure_warning("localhost") is None
    warning = exposure_warning("0.0.0.0")
    assert warning is not None and "0.0.0.0" in warning and "127.0.0.1" in warning
    assert allowed_hosts("127.0.0.1", None) == ["127.0.0.1", "::1", "localhost"]
    assert allowed_hosts("0.0.0.0", None) == ["*"]
    client = TestClient(create_app(explorer), base_url="http://127.0.0.1:8765")
    # DNS rebinding: a page of another site reaching 127.0.0.1 under its own name is refused
    assert client.get("/api/health", headers={"host": "evil.example"}).status_code == 400
    assert client.get("/api/health", headers={"host": "localhost:8765"}).status_code == 200


def test_serve_cli_refuses_a_missing_index(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err
    assert "index.json" in err and "echoic index build" in err


def test_uploads_are_refused_clearly_when_the_model_is_unknown(collection, tmp_path):
    index = tmp_path / "idx"
    index.mkdir()
    for f in collection.index.iterdir():
        if f.is_file():
            (index / f.name).write_bytes(f.read_bytes())
    meta = json.loads((index / "index.json").read_text())
    meta["model"]["source"] = None
    (index / "index.json").write_text(json.dumps(meta))
    explorer = Explorer(ExplorerConfig(index=index))
    client = TestClient(create_app(explorer), base_url="http://127.0.0.1:8765")
    assert client.get("/api/info").json()["uploads"] is False
    r = client.post(
        "/api/query?name=a.wav", content=Path(next(iter(collection.labels))).read_bytes()
    )
    assert r.status_code == 503 and "--model" in r.json()["error"]
    assert client.get("/api/neighbours/0").status_code == 200  # everything else still works
