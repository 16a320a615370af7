"""``ECHOIC_REQUIRE_DATA=1`` turns a skip for missing real-audio data into a failure (CI sets it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL_DATA_TEST = "tests/embed/test_embed_golden.py::test_embeddings_match_the_golden_outputs"


def run_without_data(tmp_path: Path, require: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ECHOIC_DATA": str(tmp_path / "no-data-here")}
    env.pop("ECHOIC_REQUIRE_DATA", None)
    if require:
        env["ECHOIC_REQUIRE_DATA"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", REAL_DATA_TEST],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("require", [False, True], ids=["skips", "fails-when-required"])
def test_missing_data_skips_or_fails(tmp_path: Path, require: bool) -> None:
    result = run_without_data(tmp_path, require)
    if require:
        assert result.returncode == 1, result.stdout
        assert "ECHOIC_REQUIRE_DATA=1" in result.stdout and "skipped" not in result.stdout
    else:
        assert result.returncode == 0, result.stdout
        assert "skipped" in result.stdout and "failed" not in result.stdout
