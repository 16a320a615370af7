"""`python -m echoic.cli.demo` on one real task with a tiny model: builds, evaluates, reports,
and skips the build on the second run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("ECHOIC_DATA", REPO / ".." / "shared" / "data"))


def test_demo_builds_evaluates_and_reuses(tmp_path: Path, tiny_model_factory, capsys) -> None:
    if not (DATA / "body_percussion").is_dir():
        pytest.skip(f"real-audio data not found at {DATA}")
    from echoic.checkpoint import save
    from echoic.cli.demo import main

    save(tiny_model_factory(0), tmp_path / "tiny")
    args = [
        "--out",
        str(tmp_path / "demo"),
        "--tasks",
        "body_percussion",
        "--protocol",
        "knn",
        "--models",
        f"{tmp_path / 'tiny'},no_such_model_dir_or_name",
        "--quiet",
        "--data",
        str(DATA.resolve()),
    ]
    with pytest.raises(Exception, match="no_such_model"):  # unknown names fail loudly
        main(args)
    args[args.index("--models") + 1] = str(tmp_path / "tiny")
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "202 clips rendered" in first and "body_percussion" in first
    assert (tmp_path / "demo" / "results" / "report.html").is_file()
    assert main(args) == 0
    second = capsys.readouterr().out
    assert "already built" in second and "report:" in second
