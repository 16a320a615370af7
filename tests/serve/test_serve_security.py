"""Path traversal, malformed requests, oversized and corrupt uploads: refused, and the server lives on.

The same attacks go through Starlette's TestClient (which normalises some URLs, as browsers do)
and, raw and unnormalised, over a socket to a real uvicorn (`echoic serve --port 0`).
"""

from __future__ import annotations

import http.client
import io
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from serve_helpers import SR, Collection
from starlette.testclient import TestClient

from echoic.serve.app import create_app
from echoic.serve.decode import DecodeLimits
from echoic.serve.explorer import Explorer, ExplorerConfig

LIMITS = DecodeLimits(max_bytes=64 * 1024, max_duration_s=2.0, timeout_s=20.0)


@pytest.fixture(scope="module")
def explorer(collection: Collection) -> Explorer:
    return Explorer(ExplorerConfig(index=collection.index, limits=LIMITS))


@pytest.fixture(scope="module")
def client(explorer: Explorer) -> TestClient:
    return TestClient(
        create_app(explorer), base_url="http://127.0.0.1:8765", raise_server_exceptions=False
    )


def swapped_row(explorer: Explorer, collection: Collection) -> int:
    return explorer.paths.index(str(collection.swapped))


def traversal_paths(collection: Collection, swapped: int) -> list[str]:
    secret = str(collection.root / "secret.txt")
    quoted = urllib.parse.quote(secret, safe="")
    return [
        "/api/audio/../../../../etc/passwd",
        "/api/audio/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/api/audio/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/api/audio/%252e%252e%252fsecret.txt",  # double-encoded
        f"/api/audio/{quoted}",  # an absolute path, URL-encoded
        f"/api/audio/{secret}",  # an absolute path
        "/api/audio//etc/passwd",
        f"/api/audio/{swapped}",  # an indexed path that is now a symlink out of the collection
        f"/api/thumbnail/{swapped}",
        "/api/audio/-1",
        "/api/audio/999999",  # no such row
        "/api/audio/1e3",
        "/api/audio/0x1",
        "/api/audio/%EF%BC%91",  # a full-width digit one: str.isdigit() says yes, we say no
        "/api/audio/0%00",
        "/api/audio/0%20",
        "/api/audio/" + "9" * 40,
        "/api/neighbours/..%2F0",
        "/api/thumbnail/../../secret.txt",
        "/static/../../../../etc/passwd",
        "/static/..%2F..%2Fpyproject.toml",
        "/static/%2e%2e/%2e%2e/secret.txt",
        "/static/index.html/..",
        "/static/serve_helpers.py",
        "/%2e%2e/%2e%2e/etc/passwd",
    ]


def wav_bytes(seconds: float, rate: int = SR) -> bytes:
    buffer = io.BytesIO()
    t = np.arange(int(rate * seconds)) / rate
    sf.write(buffer, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate, format="WAV")
    return buffer.getvalue()


def flac_of_silence(seconds: float) -> bytes:
    """A few kB that decode to ``seconds`` of audio (a 'decompression bomb' in miniature)."""
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(int(SR * seconds), np.float32), SR, format="FLAC")
    return buffer.getvalue()


def check_health(client: TestClient, collection: Collection) -> None:
    assert client.get("/api/health").json()["status"] == "ok"
    clip = Path(next(iter(collection.labels)))
    r = client.post(f"/api/query?name={clip.name}", content=clip.read_bytes())
    assert r.status_code == 200 and r.json()["hits"][0]["score"] == pytest.approx(1, abs=1e-4)


def test_traversal_malformed_oversized_and_corrupt_requests(client, explorer, collection):
    paths = traversal_paths(collection, swapped_row(explorer, collection))
    assert len(paths) >= 10
    for path in paths:
        r = client.get(path)
        assert r.status_code == 404, (path, r.status_code, r.text[:200])
        assert b"not for the explorer" not in r.content and b"root:" not in r.content
    # malformed requests: wrong methods, bad k, bad Content-Length
    assert client.post("/api/audio/0").status_code == 405
    assert client.get("/api/query").status_code == 405
    for k in ("0", "101", "abc", "-3", "1.5"):
        r = client.get(f"/api/neighbours/0?k={k}")
        assert r.status_code == 400 and "k must be" in r.json()["error"]
    # an upload over the limit: declared (Content-Length), and streamed without a length
    big = wav_bytes(3.0)
    assert len(big) > LIMITS.max_bytes
    r = client.post("/api/query?name=big.wav", content=big)
    assert r.status_code == 413 and "MiB" in r.json()["error"]
    r = client.post("/api/query?name=big.wav", content=iter([big[:40_000], big[40_000:]]))
    assert r.status_code == 413
    # corrupt uploads: garbage, a truncated header, a WAV whose header lies, an empty body
    lying = bytearray(wav_bytes(0.5))
    lying[22:24] = (60000).to_bytes(2, "little")  # 60,000 channels
    for body, name in (
        (b"\x00\x01garbage" * 300, "junk.wav"),
        (wav_bytes(0.5)[:30], "short.wav"),
        (bytes(lying), "lying.wav"),
        (b"", "empty.wav"),
        (b"ID3" + bytes(2000), "fake.mp3"),
    ):
        r = client.post(f"/api/query?name={name}", content=body)
        assert r.status_code == 422, (name, r.status_code, r.text)
        assert r.json()["error"] and "/tmp/" not in r.json()["error"]  # no server paths
    # decodes to more audio than allowed: refused after 2 s of decoding, not loaded whole
    r = client.post("/api/query?name=bomb.flac", content=flac_of_silence(600))
    assert r.status_code == 413 and "too long" in r.json()["error"]
    check_health(client, collection)  # the server still answers, uploads included


def test_audio_path_refuses_what_is_not_an_indexed_file_inside_the_collection(explorer, collection):
    swapped = swapped_row(explorer, collection)
    assert explorer.audio_path(swapped) is None  # symlink out of the collection
    assert explorer.audio_path(-1) is None and explorer.audio_path(len(explorer)) is None
    good = explorer.paths.index(next(iter(collection.labels)))
    assert explorer.audio_path(good) == Path(explorer.paths[good]).resolve()
    # the same file is served when its folder is allowed explicitly
    wide = Explorer(
        ExplorerConfig(
            index=collection.index,
            roots=[collection.audio, collection.root / "outside"],
            load_model=False,
        )
    )
    assert wide.audio_path(swapped) == collection.secret.resolve()
    for text in ("12a", "", "+1", " 1", "１", "0" * 13):
        assert explorer.row(text) is None


def raw_get(host: str, port: int, target: str) -> tuple[int, bytes]:
    """GET ``target`` exactly as written (http.client does not normalise ``..`` or ``%2e``)."""
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.putrequest("GET", target, skip_accept_encoding=True)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_real_server_on_an_ephemeral_port(server, collection):
    """`echoic serve` under uvicorn: raw traversal attempts, an oversized and a corrupt upload,
    then it still answers."""
    url = urllib.parse.urlsplit(server.url)
    host, port = url.hostname, url.port
    assert host == "127.0.0.1" and port  # loopback by default, on the port the OS gave
    explorer = Explorer(ExplorerConfig(index=collection.index, load_model=False))
    for target in traversal_paths(collection, swapped_row(explorer, collection)):
        status, body = raw_get(host, port, target)
        assert status == 404, (target, status)
        assert b"not for the explorer" not in body and b"root:" not in body
    status, body = raw_get(host, port, "/api/audio/0")
    assert status == 200 and body[:4] == b"RIFF"
    conn = http.client.HTTPConnection(host, port, timeout=20)
    big = wav_bytes(3.0)
    conn.request("POST", "/api/query?name=big.wav", body=big)
    response = conn.getresponse()
    assert response.status == 413 and b"MiB" in response.read()
    conn.close()
    conn = http.client.HTTPConnection(host, port, timeout=20)
    conn.request("POST", "/api/query?name=junk.wav", body=b"RIFF\x00\x00\x00\x00WAVEjunk" * 50)
    response = conn.getresponse()
    assert response.status == 422 and b"error" in response.read()
    conn.close()
    status, body = raw_get(host, port, "/api/health")
    assert status == 200 and b'"ok"' in body
    assert server.process.poll() is None  # still running
