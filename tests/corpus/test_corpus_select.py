"""`echoic corpus select`: sub-manifests by category and source, paths that still resolve."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from echoic.cli.main import main
from echoic.corpus import CorpusError
from echoic.corpus.select import select_rows, write_selection

HEADER = ["file", "source", "duration_s", "sample_rate", "sha256", "origin"]


def _corpus(tmp_path: Path, with_categories: bool = True) -> Path:
    corpus = tmp_path / "corpus"
    (corpus / "audio").mkdir(parents=True)
    rows = [
        ["audio/a.flac", "debian_sfx", "2.0", "16000", "aa", "x"],
        ["/abs/b.ogg", "debian_sfx", "3.0", "44100", "bb", "y"],
        ["audio/c.flac", "debian_sfx", "4.0", "16000", "cc", "z"],
        ["audio/d.flac", "soundfont_train", "4.0", "16000", "dd", "w"],
    ]
    with open(corpus / "manifest.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([HEADER, *rows])
    if with_categories:
        with open(corpus / "categories.csv", "w", newline="") as fh:
            csv.writer(fh).writerows(
                [
                    ["file", "source", "category"],
                    ["audio/a.flac", "debian_sfx", "sfx"],
                    ["/abs/b.ogg", "debian_sfx", "sfx"],
                    ["audio/c.flac", "debian_sfx", "speech"],
                ]
            )
    return corpus


def test_select_by_category_and_source(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path)
    assert [r["sha256"] for r in select_rows(corpus, ["sfx"])] == ["aa", "bb"]
    assert [r["sha256"] for r in select_rows(corpus, ["sfx", "speech"])] == ["aa", "bb", "cc"]
    assert [r["sha256"] for r in select_rows(corpus, ["uncategorised"])] == ["dd"]
    assert [r["sha256"] for r in select_rows(corpus, [], ["soundfont_train"])] == ["dd"]
    assert len(select_rows(corpus)) == 4


def test_selection_paths_resolve_from_elsewhere(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path)
    out = write_selection(select_rows(corpus, ["sfx"]), corpus, tmp_path / "lists" / "sfx.csv")
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == HEADER
    assert (out.parent / rows[0]["file"]).resolve() == (corpus / "audio" / "a.flac").resolve()
    assert rows[1]["file"] == "/abs/b.ogg"


def test_select_errors_name_what_is_there(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path)
    with pytest.raises(CorpusError, match=r"found categories \['sfx', 'speech', 'uncategorised'\]"):
        select_rows(corpus, ["music"])
    bare = _corpus(tmp_path / "bare", with_categories=False)
    with pytest.raises(CorpusError, match=r"categories\.csv not found"):
        select_rows(bare, ["sfx"])


def test_cli_select(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = _corpus(tmp_path)
    out = tmp_path / "speech.csv"
    assert main(["corpus", "select", str(corpus), "--categories", "speech", "--out", str(out)]) == 0
    assert "1 files, 0.00 h" in capsys.readouterr().out
    assert out.read_text().count("\n") == 2
