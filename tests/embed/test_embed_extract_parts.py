"""extract's part files and merge: flushing by size and copying row groups change no row."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq

from echoic.data.testing import make_good_files
from echoic.embed.embedder import Embedder
from echoic.embed.extract import extract


def test_flushing_by_size_gives_the_same_rows(tmp_path: Path, tiny_model_factory) -> None:
    files = make_good_files(tmp_path / "audio", 5, seconds=1.5)
    embedder = Embedder(tiny_model_factory())
    whole, parts = tmp_path / "whole.parquet", tmp_path / "parts.parquet"
    extract(files, whole, embedder, timestamps=True, progress=False)
    report = extract(
        files, parts, embedder, timestamps=True, files_per_batch=2, flush_bytes=1, progress=False
    )
    assert report.written == 5
    assert pq.read_metadata(parts).num_row_groups == 3  # one part per group of two files
    assert pq.read_table(parts).equals(pq.read_table(whole))
    assert pq.read_schema(parts).equals(pq.read_schema(whole), check_metadata=True)


def test_a_merge_after_a_crash_keeps_each_path_once(tmp_path: Path, tiny_model_factory) -> None:
    files = make_good_files(tmp_path / "audio", 4, seconds=0.5)
    embedder = Embedder(tiny_model_factory())
    out = tmp_path / "e.parquet"
    extract(files[:3], out, embedder, timestamps=True, progress=False)
    # a run stopped after writing the merged output but before removing its parts
    parts = out.with_name(out.name + ".parts")
    parts.mkdir()
    shutil.copy(out, parts / "part-000000.parquet")
    report = extract(files, out, embedder, timestamps=True, progress=False)
    assert report.already_done == 3 and report.written == 1
    paths = pq.read_table(out).column("path").to_pylist()
    assert sorted(paths) == sorted(str(f.resolve()) for f in files)
    again = tmp_path / "fresh.parquet"
    extract(files, again, embedder, timestamps=True, progress=False)
    by_path = {r["path"]: r for r in pq.read_table(again).to_pylist()}
    assert pq.read_table(out).to_pylist() == [by_path[p] for p in paths]


def test_extracted_timestamps_are_the_embedders_own(tmp_path: Path, tiny_model_factory) -> None:
    """extract keeps timestamp rows as the frames they interpolate and writes them page by page;
    the file holds exactly the rows Embedder.embed returns (fp32 and bf16 alike)."""
    import numpy as np

    from echoic.data.audio import load_audio

    files = make_good_files(tmp_path / "audio", 3, seconds=2.5)
    for precision in ("fp32", "bf16"):
        embedder = Embedder(tiny_model_factory(), precision=precision)
        out = tmp_path / f"{precision}.parquet"
        extract(files, out, embedder, timestamps=True, progress=False)
        table = pq.read_table(out)
        by_path = dict(zip(table.column("path").to_pylist(),
                           table.column("timestamp_embeddings").to_pylist(), strict=True))  # fmt: skip
        for f in files:
            wave, _ = load_audio(f, embedder.sample_rate)
            [emb] = embedder.embed([wave])
            want = emb.timestamps.float().numpy()
            assert want.shape[0] > emb.frames.shape[0]  # interpolated rows, not the frames
            got = np.asarray(by_path[str(Path(f).resolve())], np.float32)
            np.testing.assert_array_equal(got, want)
