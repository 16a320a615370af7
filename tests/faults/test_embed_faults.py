"""Faults of ``echoic embed`` (the local engine; the Ray ones: tests/ray_engine/test_ray_faults.py).

Each case disturbs a run (SIGTERM, kill -9, a full disk, a part cut short), runs the same command
again and checks the output against an undisturbed run: every row there, none twice, the same
values, no temporary or part file left behind.
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fault_helpers import (
    embed_args,
    leftovers,
    output,
    parts,
    parts_dir,
    rows,
    rows_lost,
    run,
    start,
    wait_for,
)

from conftest import FILES
from echoic.embed.extract import errors_path, extract
from echoic.embed.paged_parquet import PagedParquetWriter
from echoic.errors import DiskFullError
from echoic.zoo.registry import resolve_model

DELAY = 0.3  # seconds per batch of 2 files in the slowed child


def finish_and_check(audio: Path, model_dir: Path, out: Path, reference: Path) -> str:
    """Run ``echoic embed`` again to the end; the invariants of a finished output."""
    done = run("embed", embed_args(model_dir, audio, out))
    assert done.returncode == 0, done.stdout[-3000:]
    assert rows_lost(out, reference) == 0
    assert leftovers(out) == []
    assert "zz_broken.wav" in errors_path(out).read_text()  # the bad file is still reported
    return done.stdout


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_a_killed_embed_resumes_to_the_same_rows(
    audio: Path, model_dir: Path, reference: Path, tmp_path: Path, sig: int
) -> None:
    out = tmp_path / "emb.parquet"
    child = start("embed", embed_args(model_dir, audio, out), delay=DELAY)
    try:
        reached = wait_for(lambda: len(parts(out)) >= 2, child)
        os.kill(child.pid, sig)
        log = output(child)
    finally:
        child.kill()
    assert reached, f"the run ended before it was killed:\n{log[-2000:]}"
    # SIGTERM: echoic embed writes what it had embedded and exits 143; kill -9: no say
    assert child.returncode == (128 + sig if sig == signal.SIGTERM else -sig), log[-2000:]
    kept = parts(out)
    assert 2 <= len(kept) < FILES // 2 and not out.exists()
    # no half-written part: at most a temporary file of a kill -9 mid-write (the re-run removes it)
    assert all(p.name.endswith(".tmp") for p in parts_dir(out).iterdir() if p not in kept)
    done_before = sum(len(rows(p)) for p in kept)  # every part reads, no path twice
    stdout = finish_and_check(audio, model_dir, out, reference)
    assert f"({done_before} already there)" in stdout


def test_a_full_disk_stops_with_a_clear_error_and_a_rerun_completes(
    audio: Path, model_dir: Path, reference: Path, tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "emb.parquet"
    write = PagedParquetWriter.write
    calls = {"n": 0}

    def fills_the_disk(self: PagedParquetWriter, table) -> None:  # the third part fills it
        calls["n"] += 1
        if calls["n"] == 3:
            self._file.write(b"\0" * 100)  # a partial write, then the device is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write(self, table)

    monkeypatch.setattr(PagedParquetWriter, "write", fills_the_disk)
    embedder = resolve_model(str(model_dir))
    with pytest.raises(DiskFullError, match=r"no space left on the device.*run the same command"):
        extract([audio], out, embedder, files_per_batch=2, flush_every=2, progress=False)
    kept = parts(out)
    assert len(kept) == 2 and sum(len(rows(p)) for p in kept) == 4
    assert sorted(leftovers(out)) == kept  # the half-written third part is gone

    monkeypatch.setattr(PagedParquetWriter, "write", write)  # space freed
    report = extract([audio], out, embedder, progress=False)
    assert report.already_done == 4 and report.written == FILES - 4
    assert rows_lost(out, reference) == 0 and leftovers(out) == []


def test_a_full_disk_during_the_final_merge_keeps_every_part(
    audio: Path, model_dir: Path, reference: Path, tmp_path: Path, monkeypatch
) -> None:
    from echoic.cli.main import main

    out = tmp_path / "emb.parquet"

    def no_space(*args, **kwargs) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(PagedParquetWriter, "copy_row_group", no_space)
    embedder = resolve_model(str(model_dir))
    with pytest.raises(DiskFullError, match=r"every row is kept in .*emb\.parquet\.parts"):
        extract([audio], out, embedder, files_per_batch=4, flush_every=4, progress=False)
    assert len(parts(out)) == 4 and not out.exists()
    assert [p for p in leftovers(out) if p.name.startswith(".")] == []
    monkeypatch.undo()

    handler = signal.getsignal(signal.SIGTERM)  # echoic embed installs its own
    try:
        assert main(["embed", *embed_args(model_dir, audio, out)]) == 0
    finally:
        signal.signal(signal.SIGTERM, handler)
    assert rows_lost(out, reference) == 0 and leftovers(out) == []


def test_the_cli_reports_a_full_disk_in_one_line(
    audio: Path, model_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    from echoic.cli.main import main

    def no_space(*args, **kwargs) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(PagedParquetWriter, "write", no_space)
    handler = signal.getsignal(signal.SIGTERM)
    try:
        assert main(["embed", *embed_args(model_dir, audio, tmp_path / "e.parquet")]) == 1
    finally:
        signal.signal(signal.SIGTERM, handler)
    err = capsys.readouterr().err
    assert err.startswith("echoic embed: error: no space left on the device") and "Free" in err


def test_a_truncated_last_part_is_moved_aside_and_embedded_again(
    audio: Path, model_dir: Path, reference: Path, tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "emb.parquet"
    embedder = resolve_model(str(model_dir))
    write = PagedParquetWriter.write
    calls = {"n": 0}

    def stops_after_three(self: PagedParquetWriter, table) -> None:
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt  # the run stops after three parts
        write(self, table)

    monkeypatch.setattr(PagedParquetWriter, "write", stops_after_three)
    with pytest.raises(KeyboardInterrupt):
        extract([audio], out, embedder, files_per_batch=2, flush_every=2, progress=False)
    monkeypatch.undo()
    last = parts(out)[-1]
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])  # a crash (or a disk) cut the last part short
    stale = parts_dir(out) / f".{last.name}.12345.tmp"
    stale.write_bytes(b"half")  # and a temporary file of a killed writer

    report = extract([audio], out, embedder, progress=False)
    aside = out.with_name(f"{out.name}.corrupt-{last.name}")
    assert report.quarantined == [str(aside)] and aside.read_bytes() == data[: len(data) // 2]
    assert f"moved aside an unreadable part (its files are embedded again): {aside}" in (
        report.summary()
    )
    assert report.already_done == 4 and report.written == FILES - 4
    assert rows_lost(out, reference) == 0
    assert leftovers(out) == []  # the stale temporary file was removed
    assert pq.read_metadata(out).num_rows == FILES
