"""Ray tests run under ``make test-ray`` (ECHOIC_REQUIRE_RAY=1, after installing ``echoic[ray]``),
never under ``make test``: each starts a local Ray (seconds) and they need the optional extra.
Without ECHOIC_REQUIRE_RAY=1 nothing here is collected; with it, a missing Ray fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

if os.environ.get("ECHOIC_REQUIRE_RAY") != "1":
    collect_ignore_glob = ["test_*.py"]

# every local Ray of these tests (and of their driver subprocesses) binds 127.0.0.1 only: set
# before ray is imported (echoic.embed.ray_extract.LOOPBACK_ONLY)
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_factory) -> Path:
    from echoic.checkpoint import save

    path = tmp_path_factory.mktemp("model")
    save(tiny_model_factory(), path)
    return path
