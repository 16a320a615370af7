"""PagedParquetWriter: pyarrow reads back exactly what pyarrow would have written, rows split
across pages included; row groups of other files are copied without decoding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from echoic.embed.paged_parquet import PagedParquetWriter
from echoic.embed.thrift_compact import encode_struct, varint

DIM = 5


def _schema() -> pa.Schema:
    """The schema of ``echoic embed --timestamps`` at a small width."""
    return pa.schema(
        [
            pa.field("path", pa.string()),
            pa.field("duration_s", pa.float64()),
            pa.field("embedding", pa.list_(pa.float32(), DIM)),
            pa.field("timestamps_ms", pa.list_(pa.float64())),
            pa.field("timestamp_embeddings", pa.list_(pa.list_(pa.float32(), DIM))),
        ],
        metadata={b"echoic": b'{"model": "test"}'},
    )


def _table(lengths: list[int], seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "path": [f"/audio/{i}.wav" for i in range(len(lengths))],
            "duration_s": [0.5 * i for i in range(len(lengths))],
            "embedding": [rng.standard_normal(DIM).astype(np.float32) for _ in lengths],
            "timestamps_ms": [np.arange(n) * 40.0 for n in lengths],
            "timestamp_embeddings": [
                list(rng.standard_normal((n, DIM)).astype(np.float32)) for n in lengths
            ],
        },
        schema=_schema(),
    )


@pytest.mark.parametrize("page_bytes", [4, 52, 1 << 20])
@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_reads_back_as_pyarrow_writes(tmp_path: Path, page_bytes: int, compression: str) -> None:
    table = _table([3, 0, 1, 40, 7])  # an empty list, and rows longer than a page
    reference = tmp_path / "pyarrow.parquet"
    pq.write_table(table, reference, compression="zstd")
    mine = tmp_path / "paged.parquet"
    with PagedParquetWriter(mine, table.schema, compression, page_bytes) as writer:
        writer.write(table.slice(0, 2))
        writer.write(table.slice(2))
    expected, found = pq.read_table(reference), pq.read_table(mine)
    assert found.equals(expected, check_metadata=True)
    assert found.schema.equals(expected.schema, check_metadata=True)
    assert pq.read_metadata(mine).metadata == pq.read_metadata(reference).metadata
    assert pq.read_metadata(mine).num_row_groups == 2
    rows = [r for b in pq.ParquetFile(mine).iter_batches(batch_size=2) for r in b.to_pylist()]
    assert rows == expected.to_pylist()


def test_a_long_row_is_split_into_pages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pages: list[int] = []
    write_page = PagedParquetWriter._write_page

    def counting(self: PagedParquetWriter, body: bytes, levels: int, chunk: Any) -> None:
        pages.append(len(body))
        write_page(self, body, levels, chunk)

    monkeypatch.setattr(PagedParquetWriter, "_write_page", counting)
    table = _table([1000])
    out = tmp_path / "long.parquet"
    with PagedParquetWriter(out, table.schema, page_bytes=4096) as writer:
        writer.write(table)
    # path, duration and scene: a page each; the 1000 timestamps (float64) in two pages and
    # their 5000 float32 embedding values in five, each about 4 KiB whatever the row holds
    assert len(pages) == 3 + 2 + 5 and max(pages) < 4096 + 600
    assert pq.read_table(out).equals(table)


def test_no_rows_gives_an_empty_file_with_the_schema(tmp_path: Path) -> None:
    out = tmp_path / "empty.parquet"
    with PagedParquetWriter(out, _schema()) as writer:
        writer.write(_table([]))
    reference = tmp_path / "pyarrow.parquet"
    pq.write_table(_table([]), reference)
    table = pq.read_table(out)
    assert table.num_rows == 0
    assert table.schema.equals(pq.read_schema(reference), check_metadata=True)


def test_row_groups_are_copied_from_any_writer(tmp_path: Path) -> None:
    first, second = _table([2, 5], seed=1), _table([0, 3, 9], seed=2)
    by_pyarrow = tmp_path / "a.parquet"
    pq.write_table(first, by_pyarrow, use_dictionary=["path"], compression="zstd")
    paged = tmp_path / "b.parquet"
    with PagedParquetWriter(paged, _schema(), page_bytes=16) as writer:
        writer.write(second.slice(0, 1))
        writer.write(second.slice(1))
    out = tmp_path / "cat.parquet"
    with PagedParquetWriter(out, _schema()) as writer:
        writer.copy_row_group(by_pyarrow, 0)  # with a dictionary page
        writer.copy_row_group(paged, 1)
        writer.write(first.slice(1))
        writer.copy_row_group(paged, 0)
    expected = pa.concat_tables([first, second.slice(1), first.slice(1), second.slice(0, 1)])
    assert pq.read_table(out).equals(expected)


def test_integer_leaves_round_trip(tmp_path: Path) -> None:
    """int32 / int64 leaves (token ids of echoic tokenize) in a list of fixed-size lists."""
    ids = pa.list_(pa.list_(pa.int32(), 2))
    schema = pa.schema(
        [pa.field("n", pa.int64()), pa.field("ids", ids), pa.field("runs", pa.list_(pa.int32()))]
    )
    table = pa.table(
        {"n": [3, -(2**40)], "ids": [[[1, 2], [3, 4], [5, 2**31 - 1]], []], "runs": [[1, 2], [7]]},
        schema=schema,
    )
    with PagedParquetWriter(tmp_path / "i.parquet", schema, page_bytes=8) as writer:
        writer.write(table)
    assert pq.read_table(tmp_path / "i.parquet").equals(table)


def test_refuses_what_it_cannot_write(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="int16 leaf"):
        PagedParquetWriter(tmp_path / "x.parquet", pa.schema([pa.field("n", pa.int16())]))
    nested = pa.schema([pa.field("x", pa.list_(pa.list_(pa.float32())))])
    with pytest.raises(ValueError, match="variable-length list inside another list"):
        PagedParquetWriter(tmp_path / "y.parquet", nested)
    with PagedParquetWriter(tmp_path / "z.parquet", _schema()) as writer:
        with pytest.raises(ValueError, match="schema differs"):
            writer.write(pa.table({"path": ["a"]}))
        with_null = _table([1]).set_column(1, "duration_s", pa.array([None], pa.float64()))
        with pytest.raises(ValueError, match="null"):
            writer.write(with_null)
        with pytest.raises(ValueError, match="another schema"):
            other = tmp_path / "other.parquet"
            pq.write_table(pa.table({"path": ["a"]}), other)
            writer.copy_row_group(other, 0)


def test_thrift_compact_encoding() -> None:
    assert varint(0) == b"\x00" and varint(300) == b"\xac\x02"
    # field 1 i32 0; field 2 i64 -1 (zigzag 1); a jump to field 20 (long form); then stop
    assert encode_struct([(1, "i32", 0), (2, "i64", -1), (20, "bool", True)]) == bytes(
        [0x15, 0x00, 0x16, 0x01, 0x01, 0x28, 0x00]
    )
    items = ("binary", ["a"] * 15)  # 15 items: the long list header
    assert encode_struct([(1, "list", items)])[:3] == bytes([0x19, 0xF8, 0x0F])


@pytest.mark.parametrize("page_bytes", [4, 52, 1 << 20])
def test_lazy_timestamp_rows_write_what_the_dense_rows_would(
    tmp_path: Path, page_bytes: int
) -> None:
    """Rows kept as frames to interpolate (``echoic embed --timestamps`` on an echoic model) are
    written page by page and read back as the interpolated rows themselves, pages ending anywhere
    inside a row; rows of 1 and of 0 frames beyond the clip included."""
    import torch

    from echoic.embed.parts import PartTable, Row, atomic_parquet, rows_table, schema_for
    from echoic.embed.timestamps import interpolated_timestamps, regular_timestamps

    rng = np.random.default_rng(3)
    schema = schema_for(DIM, True, {"model": "test"})
    rows, expected = [], []
    for i, (n, duration_ms) in enumerate([(9, 1400.0), (1, 100.0), (30, 4700.0), (2, 10.0)]):
        frames = torch.from_numpy(rng.standard_normal((n, DIM)).astype(np.float32))
        times = 80.0 + 160.0 * torch.arange(n, dtype=torch.float64)
        lazy, ts_ms = interpolated_timestamps(frames, times, duration_ms, 160.0)
        dense, dense_ms = regular_timestamps(frames, times, duration_ms, 160.0)
        assert torch.equal(lazy.dense(), dense) and torch.equal(ts_ms, dense_ms)
        for a, b in ((0, 1), (1, 4), (2, lazy.n)):  # any block gives the dense rows' values
            assert torch.equal(lazy.rows(a, b), dense[a:b])
        scene = rng.standard_normal(DIM).astype(np.float32)
        rows.append(Row(f"/a/{i}.wav", duration_ms / 1000, scene, ts_ms.numpy(), lazy))
        expected.append(dense.numpy())
    part = rows_table(rows, schema)
    assert isinstance(part, PartTable) and "timestamp_embeddings" not in part.table.schema.names
    target = tmp_path / "lazy.parquet"
    with PagedParquetWriter(target, schema, "zstd", page_bytes) as writer:
        writer.write(part.table, part.lazy)
    found = pq.read_table(target)
    assert found.schema.equals(schema)
    for row, want in zip(found.column("timestamp_embeddings").to_pylist(), expected, strict=True):
        np.testing.assert_array_equal(np.asarray(row, np.float32).reshape(-1, DIM), want)
    # atomic_parquet writes the same file from the PartTable (it needs the full schema)
    atomic_parquet(rows_table(rows, schema), tmp_path / "atomic.parquet", schema)
    assert pq.read_table(tmp_path / "atomic.parquet").equals(found)
