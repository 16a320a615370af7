"""Thrift compact-protocol encoding of the few structures a Parquet file needs (page headers, footer).

A struct is a sequence of fields ``(id, kind, value)``; kinds are ``"i32"``, ``"i64"``, ``"bool"``,
``"binary"`` (bytes or str), ``"struct"`` (a nested field sequence) and ``"list"`` (value
``(element kind, items)``). Fields are written in id order; absent optional fields are simply
left out. Only encoding is implemented: reading is left to pyarrow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Field = tuple[int, str, Any]

_TYPES = {"bool": 1, "i32": 5, "i64": 6, "binary": 8, "list": 9, "struct": 12}
_TRUE, _FALSE = 1, 2


def varint(n: int) -> bytes:
    """Unsigned LEB128."""
    if n < 0:
        raise ValueError(f"varint expects n >= 0; found {n}")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _zigzag(n: int) -> bytes:
    return varint(2 * n if n >= 0 else -2 * n - 1)


def _value(kind: str, value: Any) -> bytes:
    if kind in ("i32", "i64"):
        return _zigzag(int(value))
    if kind == "binary":
        raw = value.encode() if isinstance(value, str) else bytes(value)
        return varint(len(raw)) + raw
    if kind == "struct":
        return encode_struct(value)
    if kind == "list":
        element_kind, items = value
        if element_kind == "bool":
            raise ValueError("lists of bools are not needed by Parquet here and not implemented")
        code = _TYPES[element_kind]
        size = len(items)
        head = bytes([(size << 4) | code]) if size < 15 else bytes([0xF0 | code]) + varint(size)
        return head + b"".join(_value(element_kind, item) for item in items)
    raise ValueError(f"unknown thrift kind {kind!r}; expected one of {sorted(_TYPES)}")


def encode_struct(fields: Sequence[Field]) -> bytes:
    """The compact encoding of one struct (fields, then the stop byte)."""
    out = bytearray()
    last = 0
    for field_id, kind, value in sorted(fields, key=lambda f: f[0]):
        if kind not in _TYPES:
            raise ValueError(f"unknown thrift kind {kind!r}; expected one of {sorted(_TYPES)}")
        code = (_TRUE if value else _FALSE) if kind == "bool" else _TYPES[kind]
        delta = field_id - last
        if 0 < delta <= 15:
            out.append((delta << 4) | code)
        else:
            out.append(code)
            out += _zigzag(field_id)
        if kind != "bool":
            out += _value(kind, value)
        last = field_id
    out.append(0)
    return bytes(out)
