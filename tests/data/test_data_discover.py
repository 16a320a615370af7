"""find_audio: order, hidden entries, folders named like audio files."""

from __future__ import annotations

from pathlib import Path

from echoic.data import find_audio, load_audio
from echoic.errors import AudioError


def make_tree(root: Path) -> None:
    for rel in [
        "b.wav",
        "A.FLAC",
        "notes.txt",
        "sub/c.mp3",
        "sub/.hidden.wav",
        "sub/deeper/e.opus",
        ".cache/d.wav",
        "x.wav/inner.wav",
        "y/z.m4a",
        "aa/f.webm",
    ]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_walk_order_and_filters(tmp_path: Path) -> None:
    make_tree(tmp_path)
    found = find_audio([tmp_path])
    rel = [p.relative_to(tmp_path).as_posix() for p in found]
    assert rel == [
        "A.FLAC",
        "aa/f.webm",
        "b.wav",
        "sub/c.mp3",
        "sub/deeper/e.opus",
        "x.wav",
        "y/z.m4a",
    ]
    assert (tmp_path / "x.wav").is_dir()
    assert find_audio([tmp_path]) == found  # deterministic


def test_directory_named_wav_is_reported_by_loader(tmp_path: Path) -> None:
    make_tree(tmp_path)
    candidate = next(p for p in find_audio([tmp_path]) if p.name == "x.wav")
    try:
        load_audio(candidate)
    except AudioError as error:
        assert "is a directory" in error.cause and error.path == str(candidate)
    else:
        raise AssertionError("a directory loaded as audio")


def test_files_given_directly_are_kept(tmp_path: Path) -> None:
    make_tree(tmp_path)
    notes = tmp_path / "notes.txt"
    hidden = tmp_path / "sub" / ".hidden.wav"
    missing = tmp_path / "missing.wav"
    found = find_audio([notes, hidden, missing, str(tmp_path / "sub"), notes])
    assert found == [notes, hidden, missing, tmp_path / "sub/c.mp3", tmp_path / "sub/deeper/e.opus"]


def test_custom_extensions(tmp_path: Path) -> None:
    make_tree(tmp_path)
    rel = [
        p.relative_to(tmp_path).as_posix()
        for p in find_audio([tmp_path], extensions=["txt", ".WAV"])
    ]
    assert rel == ["b.wav", "notes.txt", "x.wav"]


def test_symlink_cycle_is_cut(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "s.wav").write_bytes(b"x")
    (tmp_path / "a" / "loop").symlink_to(tmp_path / "a", target_is_directory=True)
    found = find_audio([tmp_path / "a"])
    assert found == [tmp_path / "a" / "s.wav"]
