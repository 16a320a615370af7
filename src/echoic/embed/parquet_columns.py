"""Arrow fields as Parquet leaf columns: their schema elements, flat leaf values, repetition and
definition levels (RLE/bit-packed hybrid) and PLAIN values, for :mod:`echoic.embed.paged_parquet`.

Scope (the writer's): every top-level column is a string, float32, float64, int32 or int64, inside
any number of ``fixed_size_list`` layers and at most one variable-length ``list`` (the outermost);
no nulls.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from echoic.embed.thrift_compact import Field, varint

# parquet.thrift enums
_INT32, _INT64, _BYTE_ARRAY, _FLOAT, _DOUBLE = 1, 2, 6, 4, 5
REQUIRED, _OPTIONAL, _REPEATED = 0, 1, 2
_UTF8, _LIST = 0, 3
_PHYSICAL: dict[pa.DataType, tuple[int, str | None]] = {
    pa.string(): (_BYTE_ARRAY, None),
    pa.float32(): (_FLOAT, "<f4"),
    pa.float64(): (_DOUBLE, "<f8"),
    pa.int32(): (_INT32, "<i4"),  # token ids (echoic tokenize)
    pa.int64(): (_INT64, "<i8"),
}


@dataclass(frozen=True)
class Column:
    """The one leaf column of a top-level Arrow field."""

    name: str
    path: tuple[str, ...]
    physical: int
    dtype: str | None  # numpy dtype of the PLAIN values; None for strings
    variable: bool  # the outermost layer is a variable-length list
    fixed: tuple[int, ...]  # sizes of the fixed_size_list layers, outer to inner
    max_def: int
    max_rep: int
    empty_def: int  # definition level of an empty variable-length list

    @property
    def leaves_per_element(self) -> int:
        """Leaf values per element of the outermost variable list (or per row without one)."""
        return math.prod(self.fixed)


def unsupported(field: pa.Field, what: str) -> ValueError:
    return ValueError(
        f"PagedParquetWriter writes string/float/int leaves inside fixed_size_list layers "
        f"and at most one outermost list; column {field.name!r} has {what}. Write it with "
        f"pyarrow.parquet.write_table instead, or extend echoic.embed.paged_parquet."
    )


def describe(field: pa.Field) -> tuple[list[list[Field]], Column]:
    """The Parquet schema elements of a top-level field (pyarrow's compliant nested layout:
    ``<name> (LIST) / list / element``) and its leaf column."""
    elements: list[list[Field]] = []
    path = [field.name]
    node, depth_def, depth_rep = field, 0, 0
    variable, fixed, empty_def = False, [], 0
    while pa.types.is_list(node.type) or pa.types.is_fixed_size_list(node.type):
        if pa.types.is_list(node.type):
            if depth_rep:
                raise unsupported(field, "a variable-length list inside another list")
            variable = True
        else:
            fixed.append(node.type.list_size)
        depth_def += int(node.nullable)
        if not depth_rep:  # the outermost list: an empty one is defined down to here
            empty_def = depth_def
        repetition = _OPTIONAL if node.nullable else REQUIRED
        elements.append(
            [
                (3, "i32", repetition),
                (4, "binary", path[-1]),
                (5, "i32", 1),
                (6, "i32", _LIST),
                (10, "struct", [(3, "struct", [])]),  # LogicalType.LIST
            ]
        )
        elements.append([(3, "i32", _REPEATED), (4, "binary", "list"), (5, "i32", 1)])
        depth_def += 1
        depth_rep += 1
        path += ["list", "element"]
        node = node.type.value_field
    if node.type not in _PHYSICAL:
        raise unsupported(field, f"a {node.type} leaf")
    physical, dtype = _PHYSICAL[node.type]
    depth_def += int(node.nullable)
    leaf: list[Field] = [
        (1, "i32", physical),
        (3, "i32", _OPTIONAL if node.nullable else REQUIRED),
        (4, "binary", path[-1]),
    ]
    if physical == _BYTE_ARRAY:
        leaf += [(6, "i32", _UTF8), (10, "struct", [(1, "struct", [])])]  # LogicalType.STRING
    elements.append(leaf)
    column = Column(
        field.name,
        tuple(path),
        physical,
        dtype,
        variable,
        tuple(fixed),
        depth_def,
        depth_rep,
        empty_def,
    )
    return elements, column


def check_no_nulls(array: pa.Array, column: Column) -> None:
    if array.null_count:
        raise ValueError(
            f"column {column.name!r} holds {array.null_count} null(s); PagedParquetWriter writes "
            "null-free data only. Drop or fill the nulls first."
        )


def leaves(array: pa.Array, column: Column) -> tuple[Any, np.ndarray]:
    """Flat leaf values (numpy, or a list of bytes for strings) and each row's first leaf index
    ``(rows + 1,)``; an empty list has as many leaves as the next row starts at."""
    check_no_nulls(array, column)
    rows = len(array)
    if column.variable:
        counts = array.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64)
        array = array.flatten()
        check_no_nulls(array, column)
        counts *= column.leaves_per_element
    else:
        counts = np.full(rows, column.leaves_per_element, np.int64)
    for _ in column.fixed:
        array = array.flatten()
        check_no_nulls(array, column)
    starts = np.zeros(rows + 1, np.int64)
    np.cumsum(counts, out=starts[1:])
    if column.dtype is None:
        return [s.encode() for s in array.to_pylist()], starts
    return array.to_numpy(zero_copy_only=True), starts


def bit_width(max_level: int) -> int:
    return max(1, int(max_level).bit_length())


def hybrid(levels: np.ndarray, max_level: int) -> bytes:
    """RLE/bit-packing hybrid encoding of ``levels``: one RLE run when they are all equal, else
    bit-packed runs of at most 63 groups of 8."""
    width = bit_width(max_level)
    n = len(levels)
    if n == 0:
        return b""
    if bool((levels == levels[0]).all()):
        return varint(n << 1) + int(levels[0]).to_bytes((width + 7) // 8, "little")
    groups = -(-n // 8)
    padded = np.zeros(groups * 8, np.uint8)
    padded[:n] = levels
    bits = (padded[:, None] >> np.arange(width, dtype=np.uint8)) & 1
    packed = np.packbits(bits.reshape(-1), bitorder="little").tobytes()
    out = bytearray()
    for first in range(0, groups, 63):
        count = min(63, groups - first)
        out.append((count << 1) | 1)
        out += packed[first * width : (first + count) * width]
    return bytes(out)


def page_levels(
    column: Column, starts: np.ndarray, first: int, end: int, last: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Repetition and definition levels of the leaves ``[first, end)`` (and of the empty lists
    positioned there; on the ``last`` page also those at the very end)."""
    leaf = np.arange(first, end, dtype=np.int64)
    row = np.searchsorted(starts, leaf, side="right") - 1
    within = leaf - starts[row]
    rep = np.full(len(leaf), column.max_rep, np.uint8)
    # a leaf that starts an element of layer k (outer = 1) gets level k; the row's first gets 0
    sizes = [column.leaves_per_element] if column.variable else []
    sizes += [math.prod(column.fixed[k + 1 :]) for k in range(len(column.fixed))]
    for depth in range(len(sizes), 0, -1):
        rep[within % sizes[depth - 1] == 0] = depth
    rep[within == 0] = 0
    define = np.full(len(leaf), column.max_def, np.uint8)
    empty = np.flatnonzero(starts[1:] == starts[:-1])
    if len(empty):
        at = starts[empty]
        at = at[(at >= first) & ((at < end) | (last & (at == end)))] - first
        rep = np.insert(rep, at, 0)
        define = np.insert(define, at, column.empty_def)
    return rep, define


def plain_values(values: Any, column: Column, first: int, end: int) -> bytes:
    if column.dtype is None:
        return b"".join(struct.pack("<I", len(v)) + v for v in values[first:end])
    return np.ascontiguousarray(values[first:end], dtype=column.dtype).tobytes()
