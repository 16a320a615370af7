"""Fixtures of the explorer tests: a labelled collection with its index, the app, a running server."""

from __future__ import annotations

import pytest
from serve_helpers import Collection, make_collection, start_server, stop_server

pytest.importorskip(
    "starlette", reason="echoic serve needs the serve extra (pip install 'echoic[serve]')"
)


@pytest.fixture(scope="session")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Collection:
    return make_collection(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="session")
def server(collection: Collection):
    """`echoic serve` on an ephemeral 127.0.0.1 port: 64 KiB uploads, 2 s of audio at most."""
    running = start_server(
        collection.index, "--max-upload-mb", "0.0625", "--max-upload-s", "2", "-k", "5"
    )
    yield running
    stop_server(running)
