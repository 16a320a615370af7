"""Named embedding models beyond echoic checkpoints: baselines and offline peer adapters.

Every entry builds an :class:`~echoic.embed.base.EmbeddingModel`, so it works wherever a model
name is accepted (``echoic embed``, ``echoic eval``). :func:`resolve_model` is the one place that
turns a name or directory into a model: zoo entries first, then model directories written by a zoo
entry (``config.json`` naming that entry's ``checkpoint_encoder``, e.g. a fitted ``bow``), then
echoic checkpoints.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from echoic.embed.base import EmbeddingModel
from echoic.errors import EchoicError
from echoic.registry import Registry

KINDS = ("baseline", "peer", "echoic", "converted")


@dataclass
class ZooEntry:
    """A registered model: how to build it, what it is, and what it needs.

    ``embedding_size`` and ``sample_rate`` are the defaults of the built model, known without
    building it (``echoic models`` lists them). ``checkpoint_encoder``: the ``encoder`` name this
    entry writes into ``config.json`` of model directories it can load (``build(path=dir)``).
    """

    name: str
    kind: str  # "baseline" | "peer" | "echoic" | "converted"
    licence: str
    build: Callable[..., EmbeddingModel]
    requires: tuple[str, ...] = ()  # importable modules the entry needs (optional extras)
    install: str = ""  # how to get those modules
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    embedding_size: int | None = None
    sample_rate: int | None = None
    checkpoint_encoder: str | None = None

    def missing(self) -> list[str]:
        return [m for m in self.requires if _find_spec(m) is None]

    def available(self) -> bool:
        return not self.missing()

    def unavailable_reason(self) -> str | None:
        """One line saying what is missing and how to install it; None when available."""
        missing = self.missing()
        if not missing:
            return None
        how = self.install or "pip install " + " ".join(missing)
        return f"model {self.name!r} needs {', '.join(missing)}, not installed here; install: {how}"


def _find_spec(module: str) -> object | None:
    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a broken parent package, or a stub without __spec__
        return None


ZOO: Registry[ZooEntry] = Registry("model", discover_package="echoic.zoo")


def register(entry: ZooEntry) -> ZooEntry:
    if entry.kind not in KINDS:
        raise ValueError(f"ZooEntry.kind must be one of {KINDS}; found {entry.kind!r}")
    ZOO.register(entry.name, entry)
    return entry


class ModelUnavailable(EchoicError):
    """A registered model whose optional dependencies are not installed here."""


def _check_available(entry: ZooEntry) -> None:
    reason = entry.unavailable_reason()
    if reason:
        raise ModelUnavailable(reason)


def entry_for_directory(path: str | os.PathLike[str]) -> ZooEntry | None:
    """The zoo entry that wrote model directory ``path`` (by its config's encoder), if any."""
    from echoic.checkpoint import CONFIG_FILE, read_config

    path = Path(path)
    if not (path / CONFIG_FILE).is_file():
        return None
    encoder = read_config(path).encoder
    for _, entry in ZOO.items():
        if entry.checkpoint_encoder is not None and entry.checkpoint_encoder == encoder:
            return entry
    return None


def resolve_model(name_or_path: str | os.PathLike[str], **options: Any) -> EmbeddingModel:
    """A zoo entry by name, a directory a zoo entry wrote, else an echoic model in an Embedder."""
    name = str(name_or_path)
    if name in ZOO:
        entry = ZOO.get(name)
        _check_available(entry)
        return entry.build(**options)
    if Path(name).is_dir():
        entry = entry_for_directory(name)
        if entry is not None:
            _check_available(entry)
            return entry.build(path=name, **options)
    from echoic.embed.embedder import Embedder

    return Embedder(name, **options)
