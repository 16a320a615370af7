"""Dataclass configs built from plain dicts (JSON/YAML), with unknown keys reported by name."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from echoic.errors import ConfigError
from echoic.registry import unknown_name_message

C = TypeVar("C")


def from_dict(cls: type[C], data: dict[str, Any] | None, where: str = "") -> C:
    """Build dataclass ``cls`` from ``data``; nested dataclass fields are built recursively.

    Unknown keys raise :class:`ConfigError` naming the nearest valid key. Lists become tuples where the
    field's type is a tuple, so a config round-trips through JSON unchanged.
    """
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            place = f" in {where}" if where else ""
            raise ConfigError(unknown_name_message(f"{cls.__name__} key{place}", key, fields))
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints.get(name), value, f"{where}.{name}" if where else name)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    if hint is None or value is None:
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            if arg is type(None):
                continue
            if isinstance(arg, type) and dataclasses.is_dataclass(arg) and isinstance(value, dict):
                return from_dict(arg, value, where)
            if typing.get_origin(arg) is tuple and isinstance(value, list):
                return tuple(value)
        return value
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return from_dict(hint, value, where)  # type: ignore[arg-type]
    if (origin is tuple or hint is tuple) and isinstance(value, list):
        return tuple(value)
    return value


def to_dict(config: Any) -> dict[str, Any]:
    """JSON-ready dict of a (nested) dataclass config; tuples become lists."""
    result: dict[str, Any] = _jsonable(dataclasses.asdict(config))
    return result


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
