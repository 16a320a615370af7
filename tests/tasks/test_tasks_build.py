"""Builds are deterministic, resumable and explain what is missing; the CLI prints counts."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest
from tasks_helpers import DATA, SAMPLE_RATE, buildable_tasks

# A mix of rendering paths: plain decode (8 kHz FLAC and 48 kHz Opus, resampled), mixing, fluidsynth.
REBUILT = ("drums", "esc50_scenes", "fsdd_digits", "soundfont_pitch")


def all_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_rebuild_gives_identical_bytes_and_resumes(small_build, tmp_path):
    from echoic.tasks.writer import build_tasks

    names = [n for n in REBUILT if n in buildable_tasks()]
    out = tmp_path / "again"
    results = build_tasks(names, out, DATA, SAMPLE_RATE, "small", progress=False)
    for r in results:
        first = all_files(small_build[r.name])
        assert first and all_files(r.directory) == first, r.name

    # resume: delete one wav per task, rebuild: only that file is rendered, the others untouched
    victims = {}
    for r in results:
        wavs = sorted(r.directory.rglob("*.wav"))
        victims[r.name] = wavs[len(wavs) // 2]
        victims[r.name].unlink()
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = build_tasks(names, out, DATA, SAMPLE_RATE, "small", progress=False)
    assert [r.rendered for r in again] == [1] * len(names)
    assert {p: p.stat().st_mtime_ns for p in before} == before  # nothing else rewritten
    for r in again:
        assert all_files(r.directory) == all_files(small_build[r.name]), r.name
    third = build_tasks(names, out, DATA, SAMPLE_RATE, "small", progress=False)
    assert [r.rendered for r in third] == [0] * len(names)


def test_interrupted_write_leaves_no_file_under_the_real_name(tmp_path, monkeypatch):
    from echoic.tasks import writer

    target = tmp_path / "a.json"
    monkeypatch.setattr(writer.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("boom")))
    with pytest.raises(OSError):
        writer.atomic_write_bytes(target, b"{}")
    assert not target.exists()


def run_cli(*argv: str) -> int:
    from echoic.cli import tasks as tasks_cli

    parser = argparse.ArgumentParser(prog="echoic")
    tasks_cli.add_parser(parser.add_subparsers(dest="verb"))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_cli_build_and_describe(small_build, tmp_path, capsys):
    if "fsdd_digits" not in small_build:
        pytest.skip("real-audio data not found: fsdd_digits was not built")
    out = tmp_path / "cli"
    assert run_cli("tasks", "build", "--out", str(out), "--tasks", "fsdd_digits,body_percussion",
                   "--mode", "small", "--data", str(DATA), "--quiet") == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "fsdd_digits" in printed and "body_percussion" in printed and "total" in printed
    assert "MiB" in printed and " s " in printed

    task_dir = out / "fsdd_digits-v1.0.0-small"
    assert run_cli("tasks", "describe", str(task_dir)) == 0
    described = capsys.readouterr().out
    fold = json.loads((task_dir / "fold03.json").read_text())
    counts: dict[str, int] = {}
    for (label,) in fold.values():
        counts[label] = counts.get(label, 0) + 1
    line = next(x for x in described.splitlines() if x.strip().startswith("fold03:"))
    assert f"{len(fold)} clips" in line
    assert " ".join(f"{k}={v}" for k, v in sorted(counts.items())) in described
    minutes = len(fold) * 1.0 / 60
    assert f"{minutes:.1f} min @ {SAMPLE_RATE} Hz" in line


def test_missing_data_is_a_clear_error(tmp_path):
    from echoic.errors import EchoicError
    from echoic.tasks.paths import resolve_data_dir
    from echoic.tasks.writer import build_task, get_builder

    with pytest.raises(EchoicError, match=r"does not exist.*--data"):
        resolve_data_dir(tmp_path / "nowhere")
    with pytest.raises(EchoicError, match=r"needs the 'fsdd' data set.*fsdd/meta.csv"):
        build_task(get_builder("fsdd_digits"), tmp_path / "out", tmp_path, SAMPLE_RATE, "small")


def test_default_data_dir_is_beside_the_repo(monkeypatch):
    from echoic.tasks import paths

    monkeypatch.delenv("ECHOIC_DATA", raising=False)
    repo = Path(__file__).resolve().parents[2]
    # compare resolved paths: ../shared may be a symlink (a resolved one must still match)
    assert paths.default_data_dir().resolve() == (repo.parent / "shared" / "data").resolve()
    monkeypatch.setenv("ECHOIC_DATA", "/some/where")
    assert paths.default_data_dir() == Path("/some/where")


def test_missing_fluidsynth_names_the_package(monkeypatch, tmp_path):
    from echoic.errors import EchoicError
    from echoic.tasks import soundfont
    from echoic.tasks.writer import build_task, get_builder

    monkeypatch.setattr(soundfont.shutil, "which", lambda name: None)
    with pytest.raises(EchoicError, match="apt-get install fluidsynth"):
        build_task(get_builder("soundfont_pitch"), tmp_path, tmp_path, SAMPLE_RATE, "small")
    monkeypatch.setattr(soundfont.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(soundfont, "SOUNDFONT_PACKAGES", {tmp_path / "absent.sf3": "pkg-x"})
    with pytest.raises(EchoicError, match="apt-get install pkg-x"):
        build_task(get_builder("soundfont_pitch"), tmp_path, tmp_path, SAMPLE_RATE, "small")


def test_unknown_task_lists_valid_names(tmp_path):
    from echoic.registry import RegistryError
    from echoic.tasks.writer import build_tasks

    with pytest.raises(RegistryError, match="esc50_scenes"):
        build_tasks(["esc50_scene"], tmp_path, DATA, SAMPLE_RATE, "small", progress=False)
    assert not any(tmp_path.iterdir())  # fails before writing anything


def test_other_sample_rate_goes_to_its_own_folder(small_build, tmp_path):
    from echoic.tasks.writer import build_tasks

    if "guitar_chords" not in small_build:
        pytest.skip("real-audio data not found: fsdd_digits was not built")
    import soundfile as sf

    (r,) = build_tasks(["guitar_chords"], tmp_path, DATA, 22050, "small", progress=False)
    wavs = sorted((r.directory / "22050").rglob("*.wav"))
    assert wavs and all(sf.info(str(w)).samplerate == 22050 for w in wavs)
    assert all(sf.info(str(w)).frames == 44100 for w in wavs)  # 2.0 s
    assert (r.directory / "fold00.json").read_bytes() == (
        small_build["guitar_chords"] / "fold00.json"
    ).read_bytes()
    assert sorted(os.listdir(r.directory / "22050")) == sorted(
        os.listdir(small_build["guitar_chords"] / str(SAMPLE_RATE))
    )
