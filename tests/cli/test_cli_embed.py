"""`echoic embed` end to end: odd files reported and skipped, output resumable, no duplicates."""

import csv
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from echoic.checkpoint import save
from echoic.cli.main import main
from echoic.data.testing import make_good_files, make_odd_files


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_model_factory):
    path = tmp_path_factory.mktemp("model")
    save(tiny_model_factory(), path)
    return path


def test_embed_reports_bad_files_and_resumes(tmp_path, model_dir, capsys):
    audio = tmp_path / "audio"
    good = make_good_files(audio / "good", 50, seconds=0.5)
    odd = make_odd_files(audio / "odd")
    assert len(good) == 50 and len(odd) == 20
    broken = {str(p.resolve()) for p, what in odd.items() if not what.startswith("valid")}
    valid_odd = {str(p.resolve()) for p, what in odd.items() if what.startswith("valid")}
    out = tmp_path / "emb.parquet"
    args = ["embed", str(audio), "--model", str(model_dir), "--out", str(out), "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    table = pq.read_table(out)
    paths = table.column("path").to_pylist()
    assert len(paths) == len(set(paths)) == 50 + len(valid_odd)
    assert set(paths) == {str(p.resolve()) for p in good} | valid_odd
    with (tmp_path / "emb.errors.csv").open() as fh:
        errors = {str(Path(r["path"]).resolve()): r["error"] for r in csv.DictReader(fh)}
    assert set(errors) == broken  # exactly the unreadable ones, each with a cause
    assert all(errors.values())
    assert f"{len(broken)} file(s) skipped" in printed
    assert "mixed from 8 channels to mono" in printed and "192000 Hz" in printed
    emb = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    assert np.isfinite(emb).all()
    assert emb.shape == (len(paths), table.schema.field("embedding").type.list_size)

    # a re-run resumes: nothing recomputed, nothing duplicated or lost
    assert main(args) == 0
    again = pq.read_table(out)
    assert sorted(again.column("path").to_pylist()) == sorted(paths)
    assert f"wrote 0 rows to {out} ({len(paths)} already there)" in capsys.readouterr().out


def test_interrupted_run_keeps_finished_parts(tmp_path, model_dir):
    from echoic.embed.embedder import Embedder
    from echoic.embed.extract import extract

    audio = tmp_path / "audio"
    files = make_good_files(audio, 6, seconds=0.4)
    out = tmp_path / "e.parquet"
    embedder = Embedder(str(model_dir))
    extract([str(f) for f in files[:4]], out, embedder, flush_every=2, progress=False)
    # simulate a crash after the parts were flushed but before the merge: move the output back
    parts = out.with_name(out.name + ".parts")
    parts.mkdir()
    out.rename(parts / "part-000000.parquet")
    report = extract([str(audio)], out, embedder, progress=False)
    assert report.already_done == 4 and report.written == 2
    table = pq.read_table(out)
    assert sorted(table.column("path").to_pylist()) == sorted(str(f.resolve()) for f in files)
    assert not parts.exists()


def test_timestamps_columns(tmp_path, model_dir):
    files = make_good_files(tmp_path / "a", 2, seconds=1.0)
    out = tmp_path / "t.parquet"
    assert (
        main(
            [
                "embed",
                *map(str, files),
                "--model",
                str(model_dir),
                "--out",
                str(out),
                "--timestamps",
                "--quiet",
            ]
        )
        == 0
    )
    table = pq.read_table(out)
    row = table.slice(0, 1).to_pylist()[0]
    assert len(row["timestamps_ms"]) == len(row["timestamp_embeddings"]) > 1
    assert max(row["timestamps_ms"]) <= 1000 * row["duration_s"]
    # resuming with different settings is refused with a clear message
    assert (
        main(["embed", *map(str, files), "--model", str(model_dir), "--out", str(out), "--quiet"])
        == 1
    )


def test_info_prints_config(model_dir, capsys):
    assert main(["info", str(model_dir)]) == 0
    text = capsys.readouterr().out
    assert "UNTRAINED" in text and '"encoder": "vit_test"' in text


def test_embed_accepts_zoo_models(tmp_path):
    files = make_good_files(tmp_path / "a", 3, seconds=1.0)
    out = tmp_path / "z.parquet"
    assert (
        main(
            ["embed", str(tmp_path / "a"), "--model", "logmel_stats", "--out", str(out), "--quiet"]
        )
        == 0
    )
    table = pq.read_table(out)
    assert sorted(table.column("path").to_pylist()) == sorted(str(f.resolve()) for f in files)
    assert "logmel_stats" in (table.schema.metadata or {}).get(b"echoic", b"").decode()


def test_embed_shifts_gives_timestamps_from_shifted_passes(tmp_path, model_dir):
    make_good_files(tmp_path / "a", 2, seconds=1.5)
    rows = {}
    for shifts in (1, 4):
        out = tmp_path / f"s{shifts}.parquet"
        args = ["embed", str(tmp_path / "a"), "--model", str(model_dir), "--out", str(out)]
        assert main([*args, "--timestamps", "--shifts", str(shifts), "--quiet"]) == 0
        table = pq.read_table(out)
        times = np.array(table.column("timestamps_ms").to_pylist()[0])
        embs = np.array(table.column("timestamp_embeddings").to_pylist()[0])
        rows[shifts] = (times, embs)
    # the tiny test model has 160 ms patches: interpolated onto 40 ms, or 4 passes 40 ms apart
    (t1, e1), (t4, e4) = rows[1], rows[4]
    assert np.allclose(np.diff(t1), 40.0) and np.allclose(np.diff(t4), 40.0)
    n = min(len(t1), len(t4))
    assert np.allclose(t1[:n], t4[:n])
    assert np.allclose(e1[::4][: n // 4], e4[::4][: n // 4], atol=1e-5)  # the unshifted pass
    assert not np.allclose(e1[1], e4[1], atol=1e-4)  # an interpolation vs a frame of its own
    bad = ["embed", str(tmp_path / "a"), "--model", str(model_dir), "--shifts", "3"]
    assert main([*bad, "--out", str(tmp_path / "bad.parquet"), "--quiet"]) != 0
