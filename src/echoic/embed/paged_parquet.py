"""A Parquet writer that splits long rows into pages, so writing costs a few MiB whatever a row holds.

pyarrow never splits a row across data pages: one row holding an hour of timestamp embeddings
(90,000 × 1536 float32, 550 MB) becomes one page, built in memory with its repetition and
definition levels, its encoded values and its compressed copy — about five times the row. This
writer produces the same Arrow schema (stored as ``ARROW:schema``, so pyarrow reads back the same
types and schema metadata) and the same values, in version-1 data pages of about ``page_bytes``
that may end inside a row, which the format allows for version-1 pages when there is no page
index. Memory beyond the rows themselves is about one page. Row groups of another Parquet file of
the same schema (by pyarrow or by this writer) can be appended as they are, by copying their bytes
(:meth:`PagedParquetWriter.copy_row_group`), so merging files never decodes a row.

Scope: every top-level column is a string, float32, float64, int32 or int64, inside any number of
``fixed_size_list`` layers and at most one variable-length ``list`` (the outermost); no nulls.
Pages are PLAIN-encoded, levels RLE/bit-packed, compression zstd or none; no dictionary,
statistics or page index are written.
"""

from __future__ import annotations

import base64
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from echoic import __version__
from echoic.embed.parquet_columns import (
    REQUIRED,
    Column,
    describe,
    hybrid,
    leaves,
    page_levels,
    plain_values,
)
from echoic.embed.thrift_compact import Field, encode_struct

PAGE_BYTES = 1 << 20
_MAGIC = b"PAR1"
# parquet.thrift enums
_PLAIN, _RLE = 0, 3
_CODECS = {"none": 0, "zstd": 6}
_CODEC_NAMES = {"UNCOMPRESSED": 0, "SNAPPY": 1, "GZIP": 2, "LZO": 3, "BROTLI": 4, "LZ4": 5}
_CODEC_NAMES |= {"ZSTD": 6, "LZ4_RAW": 7}
_ENCODINGS = {"PLAIN": 0, "PLAIN_DICTIONARY": 2, "RLE": 3, "BIT_PACKED": 4}
_ENCODINGS |= {"DELTA_BINARY_PACKED": 5, "DELTA_LENGTH_BYTE_ARRAY": 6, "DELTA_BYTE_ARRAY": 7}
_ENCODINGS |= {"RLE_DICTIONARY": 8, "BYTE_STREAM_SPLIT": 9}
_COPY_BLOCK = 8 << 20


@dataclass
class _Chunk:
    """What the footer needs about one column chunk."""

    column: Column
    offset: int  # of its first data page
    codec: int
    encodings: tuple[int, ...] = (_RLE, _PLAIN)
    dictionary_offset: int | None = None
    levels: int = 0
    uncompressed: int = 0
    compressed: int = 0

    @property
    def start(self) -> int:
        """Where its bytes begin: the dictionary page, if any, comes first."""
        return self.offset if self.dictionary_offset is None else self.dictionary_offset


class LeafSource(Protocol):
    """A column's flat leaf values, produced on demand: ``starts`` ``(rows + 1,)`` is each row's
    first leaf index, and ``source[first:end]`` the leaves ``[first, end)`` as a numpy array of the
    column's leaf type (echoic's timestamp embeddings, interpolated block by block)."""

    @property
    def starts(self) -> np.ndarray: ...

    def __getitem__(self, index: slice) -> np.ndarray: ...


class PagedParquetWriter:
    """Write Arrow tables to ``path`` as Parquet, one row group per :meth:`write` (see module
    docstring). Use as a context manager; the file is complete once closed."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        schema: pa.Schema,
        compression: str = "zstd",
        page_bytes: int = PAGE_BYTES,
        created_by: str = f"echoic version {__version__}",
    ) -> None:
        if compression not in _CODECS:
            raise ValueError(f"compression must be one of {sorted(_CODECS)}; found {compression!r}")
        self.schema = schema
        self._codec = compression
        self._page_bytes = max(1, int(page_bytes))
        self._created_by = created_by
        described = [describe(field) for field in schema]
        self._elements = [e for elements, _ in described for e in elements]
        self._columns = [column for _, column in described]
        self._row_groups: list[tuple[int, list[_Chunk]]] = []
        self._file: BinaryIO = Path(path).open("wb")
        self._file.write(_MAGIC)

    def __enter__(self) -> PagedParquetWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self._file.close()

    def write(
        self, table: pa.Table | pa.RecordBatch, lazy: dict[str, LeafSource] | None = None
    ) -> None:
        """Append ``table`` (the writer's schema; metadata may differ) as one row group.

        ``lazy``: columns given as :class:`LeafSource` instead of in ``table`` (which then lacks
        them): their values are asked for page by page, so they are never held whole."""
        lazy = lazy or {}
        given = {f.name for f in table.schema}
        expected = pa.schema([f for f in self.schema if f.name not in lazy])
        if not table.schema.equals(expected, check_metadata=False) or not set(lazy) <= {
            f.name for f in self.schema
        }:
            besides = f" (besides lazy columns {sorted(lazy)})" if lazy else ""
            raise ValueError(
                f"table schema differs from the writer's{besides}:\nexpected {self.schema}\n"
                f"found {table.schema}\ncast the table to the writer's schema first"
            )
        if table.num_rows == 0:
            return
        chunks = []
        for column in self._columns:
            chunk = _Chunk(column, self._file.tell(), _CODECS[self._codec])
            if column.name in lazy:
                source = lazy[column.name]
                if len(source.starts) != table.num_rows + 1:
                    raise ValueError(
                        f"lazy column {column.name!r} has {len(source.starts) - 1} rows; the "
                        f"table has {table.num_rows}"
                    )
                self._write_leaves(source, np.asarray(source.starts, np.int64), chunk)
            else:
                assert column.name in given
                data = table.column(column.name)
                arrays = data.chunks if isinstance(data, pa.ChunkedArray) else [data]
                for array in arrays:
                    if len(array):
                        self._write_pages(array, chunk)
            chunks.append(chunk)
        self._row_groups.append((table.num_rows, chunks))

    def copy_row_group(self, source: str | os.PathLike[str], index: int) -> None:
        """Append row group ``index`` of the Parquet file ``source`` (same schema, any writer) by
        copying its column chunks' bytes: nothing is decoded, memory stays at one copy block.
        Statistics, page indexes and bloom filters of the source are not carried over."""
        parquet = pq.ParquetFile(source)
        metadata, found = parquet.metadata, parquet.schema_arrow
        if not found.equals(self.schema, check_metadata=False):
            raise ValueError(
                f"{source} has another schema than the writer's:\nexpected {self.schema}\n"
                f"found {found}\nwrite its rows with write() after casting them"
            )
        group = metadata.row_group(index)
        chunks = []
        with Path(source).open("rb") as fh:
            for column, position in zip(self._columns, range(group.num_columns), strict=True):
                meta = group.column(position)
                dictionary = meta.dictionary_page_offset if meta.has_dictionary_page else None
                begin = meta.data_page_offset if dictionary is None else dictionary
                shift = self._file.tell() - begin
                fh.seek(begin)
                left = meta.total_compressed_size
                while left > 0:
                    block = fh.read(min(left, _COPY_BLOCK))
                    if not block:
                        raise ValueError(f"{source} is truncated inside column {column.name!r}")
                    self._file.write(block)
                    left -= len(block)
                chunks.append(
                    _Chunk(
                        column,
                        meta.data_page_offset + shift,
                        _CODEC_NAMES[meta.compression],
                        tuple(_ENCODINGS[e] for e in meta.encodings),
                        None if dictionary is None else dictionary + shift,
                        meta.num_values,
                        meta.total_uncompressed_size,
                        meta.total_compressed_size,
                    )
                )
        self._row_groups.append((group.num_rows, chunks))

    def _write_pages(self, array: pa.Array, chunk: _Chunk) -> None:
        values, starts = leaves(array, chunk.column)
        self._write_leaves(values, starts, chunk)

    def _write_leaves(self, values: Any, starts: np.ndarray, chunk: _Chunk) -> None:
        """Pages of the leaves ``values`` (sliceable: ``values[first:end]``) of rows starting at
        leaf ``starts`` ``(rows + 1,)``."""
        column = chunk.column
        total = int(starts[-1])
        itemsize = np.dtype(column.dtype).itemsize if column.dtype else 64
        step = max(1, self._page_bytes // itemsize)
        bounds = [*range(0, total, step), total] if total else [0, 0]
        for first, end in itertools.pairwise(bounds):
            rep, define = page_levels(column, starts, first, end, last=end == total)
            body = bytearray()
            for levels, max_level in ((rep, column.max_rep), (define, column.max_def)):
                if max_level:
                    encoded = hybrid(levels, max_level)
                    body += len(encoded).to_bytes(4, "little") + encoded
            body += plain_values(values, column, first, end)
            self._write_page(bytes(body), len(rep), chunk)

    def _write_page(self, body: bytes, levels: int, chunk: _Chunk) -> None:
        data = body if self._codec == "none" else pa.compress(body, self._codec, asbytes=True)
        data_header: list[Field] = [
            (1, "i32", levels),
            (2, "i32", _PLAIN),
            (3, "i32", _RLE),
            (4, "i32", _RLE),
        ]
        header = encode_struct(
            [
                (1, "i32", 0),  # DATA_PAGE
                (2, "i32", len(body)),
                (3, "i32", len(data)),
                (5, "struct", data_header),
            ]
        )
        self._file.write(header)
        self._file.write(data)
        chunk.levels += levels
        chunk.uncompressed += len(header) + len(body)
        chunk.compressed += len(header) + len(data)

    def _footer(self) -> bytes:
        row_groups = []
        for rows, chunks in self._row_groups:
            columns = []
            for chunk in chunks:
                meta: list[Field] = [
                    (1, "i32", chunk.column.physical),
                    (2, "list", ("i32", list(chunk.encodings))),
                    (3, "list", ("binary", list(chunk.column.path))),
                    (4, "i32", chunk.codec),
                    (5, "i64", chunk.levels),
                    (6, "i64", chunk.uncompressed),
                    (7, "i64", chunk.compressed),
                    (9, "i64", chunk.offset),
                ]
                if chunk.dictionary_offset is not None:
                    meta.append((11, "i64", chunk.dictionary_offset))
                columns.append([(2, "i64", chunk.start), (3, "struct", meta)])
            row_groups.append(
                [
                    (1, "list", ("struct", columns)),
                    (2, "i64", sum(c.uncompressed for c in chunks)),
                    (3, "i64", rows),
                    (5, "i64", chunks[0].start),
                    (6, "i64", sum(c.compressed for c in chunks)),
                ]
            )
        arrow_schema = base64.b64encode(self.schema.serialize().to_pybytes())
        pairs = [(b"ARROW:schema", arrow_schema), *(self.schema.metadata or {}).items()]
        root: list[Field] = [
            (3, "i32", REQUIRED),
            (4, "binary", "schema"),
            (5, "i32", len(self._columns)),
        ]
        return encode_struct(
            [
                (1, "i32", 2),
                (2, "list", ("struct", [root, *self._elements])),
                (3, "i64", sum(rows for rows, _ in self._row_groups)),
                (4, "list", ("struct", row_groups)),
                (5, "list", ("struct", [[(1, "binary", k), (2, "binary", v)] for k, v in pairs])),
                (6, "binary", self._created_by),
            ]
        )

    def close(self) -> None:
        """Write the footer and close the file (idempotent)."""
        if self._file.closed:
            return
        footer = self._footer()
        self._file.write(footer)
        self._file.write(len(footer).to_bytes(4, "little"))
        self._file.write(_MAGIC)
        self._file.close()
