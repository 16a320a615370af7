"""The corpus builder and its leakage check, on task folders and sources made in the test."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from echoic.corpus import (
    SOURCES,
    CorpusContext,
    CorpusItem,
    CorpusSource,
    build_corpus,
    check_corpus,
    held_out_hashes,
    read_manifest,
)


def _noise(seed: int, n: int = 4000) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def _task(root: Path, name: str, split_mode: str, splits: list[str], data: Path) -> Path:
    """A HEAR-layout task: one wav per split, each with a shared source file of its own."""
    task = root / f"{name}-v1-full"
    rows = ["split,file,sources"]
    for i, split in enumerate(splits):
        wav = task / "16000" / split / f"{split}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        sf.write(wav, _noise(100 * len(name) + i), 16000, subtype="PCM_16")
        src = data / name / f"{split}.flac"
        src.parent.mkdir(parents=True, exist_ok=True)
        sf.write(src, _noise(1000 * len(name) + i), 16000)
        rows.append(f"{split},{split}.wav,{name}/{split}.flac")
    (task / "sources.csv").write_text("\n".join(rows) + "\n")
    meta = {"task_name": name, "split_mode": split_mode, "splits": splits}
    (task / "task_metadata.json").write_text(json.dumps(meta))
    return task


PLANTED: dict[str, list[CorpusItem]] = {"items": []}


@SOURCES.register("test_planted")
class Planted(CorpusSource):
    name = "test_planted"
    licence = "test"
    description = "items planted by the test"

    def items(self, ctx: CorpusContext) -> Iterator[CorpusItem]:
        yield from PLANTED["items"]


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    data, tasks = tmp_path / "data", tmp_path / "tasks"
    kfold = _task(tasks, "kf", "presplit_kfold", ["fold00", "fold01"], data)
    fixed = _task(tasks, "fixed", "trainvaltest", ["train", "valid", "test"], data)
    return {"data": data, "tasks": tasks, "kfold": kfold, "fixed": fixed, "out": tmp_path / "c"}


def _build(world: dict[str, Path], items: list[CorpusItem]):
    PLANTED["items"] = items
    ctx = CorpusContext(data_dir=world["data"])
    summary = build_corpus(world["out"], ["test_planted"], ctx, progress=False)
    rows = read_manifest(world["out"])
    held = held_out_hashes([world["tasks"]], world["data"])
    return summary, rows, check_corpus(rows, held)


def test_train_split_and_new_audio_pass(world: dict[str, Path], tmp_path: Path) -> None:
    train_wav = world["fixed"] / "16000" / "train" / "train.wav"
    items = [
        CorpusItem("train", path=train_wav, origin="fixed/train.flac"),
        CorpusItem("fresh", render=lambda: (_noise(7), 16000), origin="rendered"),
    ]
    summary, rows, leaks = _build(world, items)
    assert leaks == []
    assert [r["file"] for r in rows] == [str(train_wav.resolve()), "audio/test_planted/fresh.flac"]
    assert summary.total_files == 2
    assert summary.sources["test_planted"]["seconds"] == pytest.approx(8000 / 16000)


def test_every_kind_of_held_out_audio_is_caught(world: dict[str, Path], tmp_path: Path) -> None:
    copies = tmp_path / "copies"
    copies.mkdir()
    planted = {
        "kfold_wav": world["kfold"] / "16000" / "fold01" / "fold01.wav",  # k-fold: all held out
        "valid_wav": world["fixed"] / "16000" / "valid" / "valid.wav",
        "test_source": world["data"] / "fixed" / "test.flac",  # the shared file behind test
    }
    items = []
    for key, path in planted.items():  # copies under other names: only content can tell
        copy = copies / f"{key}{path.suffix}"
        copy.write_bytes(path.read_bytes())
        items.append(CorpusItem(key, path=copy, origin="innocent-looking"))
    # a re-encoded held-out file has new bytes, but its recorded origin gives it away
    items.append(
        CorpusItem("reencoded", render=lambda: (_noise(5), 16000), origin="kf/fold00.flac")
    )
    items.append(CorpusItem("ok", render=lambda: (_noise(9), 16000), origin="rendered"))
    *_, leaks = _build(world, items)
    caught = {Path(leak.corpus_file).stem: leak.how for leak in leaks}
    assert caught == {
        "kfold_wav": "sha256",
        "valid_wav": "sha256",
        "test_source": "sha256",
        "reencoded": "origin",
    }


def test_build_resumes_and_skips_bad_items(world: dict[str, Path]) -> None:
    calls = []

    def render() -> tuple[np.ndarray, int]:
        calls.append(1)
        return _noise(3), 16000

    def broken() -> tuple[np.ndarray, int]:
        return np.full(100, np.nan, dtype=np.float32), 16000

    items = [CorpusItem("a", render=render), CorpusItem("bad", render=broken)]
    first, _, _ = _build(world, items)
    second, rows, _ = _build(world, items)
    assert len(calls) == 1  # the second build found a.flac on disk
    assert [r["source"] for r in rows] == ["test_planted"]
    assert len(first.failures) == 1 and "bad" in first.failures[0]
    assert first.content_hash == second.content_hash
    with open(world["out"] / "manifest.csv", newline="") as fh:
        assert next(csv.reader(fh))[:2] == ["file", "source"]
