"""One generic registry used by every extension point (encoders, frontends, models, tasks, ...).

Entries are registered with a decorator in the module that defines them; ``discover`` imports every
module of a package so that dropping a file into that package is enough to register it.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar, overload

T = TypeVar("T")


class RegistryError(KeyError):
    """An unknown name was asked of a registry; the message names the closest valid names."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """A name → object table with helpful errors.

    >>> ENCODERS: Registry[Callable[..., object]] = Registry("encoder")
    >>> @ENCODERS.register("vit_test")
    ... def build(): ...
    """

    def __init__(self, kind: str, discover_package: str | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._discover_package = discover_package
        self._discovered = discover_package is None

    @overload
    def register(self, name: str, obj: None = None) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, obj: T) -> T: ...

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; used bare (``register(name, obj)``) or as a decorator."""

        def _add(item: T) -> T:
            if name in self._entries and self._entries[name] is not item:
                raise ValueError(
                    f"{self.kind} {name!r} is registered twice; expected unique names. "
                    f"Rename one of them (existing: {self._entries[name]!r}, new: {item!r})."
                )
            self._entries[name] = item
            return item

        if obj is not None:
            return _add(obj)
        return _add

    def _ensure_discovered(self) -> None:
        if not self._discovered:
            self._discovered = True
            discover(self._discover_package or "")

    def get(self, name: str) -> T:
        self._ensure_discovered()
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(unknown_name_message(self.kind, name, self._entries)) from None

    def __contains__(self, name: object) -> bool:
        self._ensure_discovered()
        return name in self._entries

    def names(self) -> list[str]:
        self._ensure_discovered()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        self._ensure_discovered()
        return iter(sorted(self._entries.items()))

    def __len__(self) -> int:
        self._ensure_discovered()
        return len(self._entries)


def unknown_name_message(kind: str, name: str, valid: object) -> str:
    """'unknown <kind> X; did you mean Y? valid: ...' — shared by registries and config checks."""
    names = sorted(str(v) for v in valid)  # type: ignore[attr-defined]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.0)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r}.{hint} Valid: {', '.join(names) or '(none registered)'}."


def discover(package: str) -> list[str]:
    """Import every module below ``package`` so their ``register`` calls run. Returns their names."""
    pkg = importlib.import_module(package)
    found: list[str] = []
    for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
        importlib.import_module(info.name)
        found.append(info.name)
    return found
