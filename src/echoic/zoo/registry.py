"""Named embedding models beyond echoic checkpoints: baselines and offline peer adapters.

Every entry builds an :class:`~echoic.embed.base.EmbeddingModel`, so it works wherever a model
name is accepted (``echoic embed``, ``echoic eval``). :func:`resolve_model` is the one place that
turns a name or directory into a model: zoo entries first, then echoic checkpoints.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from echoic.embed.base import EmbeddingModel
from echoic.errors import EchoicError
from echoic.registry import Registry


@dataclass
class ZooEntry:
    """A registered model: how to build it, what it is, and what it needs."""

    name: str
    kind: str  # "baseline" | "peer" | "echoic" | "converted"
    licence: str
    build: Callable[..., EmbeddingModel]
    requires: tuple[str, ...] = ()  # importable modules the entry needs (optional extras)
    install: str = ""  # how to get those modules
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def missing(self) -> list[str]:
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def available(self) -> bool:
        return not self.missing()


ZOO: Registry[ZooEntry] = Registry("model", discover_package="echoic.zoo")


def register(entry: ZooEntry) -> ZooEntry:
    ZOO.register(entry.name, entry)
    return entry


class ModelUnavailable(EchoicError):
    """A registered model whose optional dependencies are not installed here."""


def resolve_model(name_or_path: str | os.PathLike[str], **options: Any) -> EmbeddingModel:
    """A zoo entry by name, else an echoic model name or directory wrapped in an Embedder."""
    name = str(name_or_path)
    if name in ZOO:
        entry = ZOO.get(name)
        missing = entry.missing()
        if missing:
            raise ModelUnavailable(
                f"model {name!r} needs {', '.join(missing)}, which is not installed; "
                f"install it with: {entry.install or 'pip install ' + ' '.join(missing)}"
            )
        return entry.build(**options)
    from echoic.embed.embedder import Embedder

    return Embedder(name, **options)
