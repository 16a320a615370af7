"""What a model card is, without the registry: :class:`ModelCard`, :class:`Origin`, the kinds,
:func:`lazy` builders and :class:`ModelUnavailable` (re-exported by :mod:`echoic.cards`, which
holds the registry, model directories and loading). Imports nothing heavy, like the card modules
that use it (``echoic models`` imports no torch).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

from echoic.data.hashing import cached_file_sha256
from echoic.errors import EchoicError
from echoic.model_format import BUNDLED_DIR, ModelConfig

__all__ = [
    "ECHOIC_KINDS",
    "KINDS",
    "CardKind",
    "LoadedModel",
    "ModelCard",
    "ModelUnavailable",
    "Origin",
    "find_spec",
    "lazy",
]

CardKind = Literal["echoic", "converted", "baseline", "peer"]
KINDS: tuple[CardKind, ...] = ("echoic", "converted", "baseline", "peer")
ECHOIC_KINDS = ("echoic", "converted")  # cards whose build() returns an EchoicModel

LoadedModel: TypeAlias = Any
"""What :func:`load` returns: an ``EchoicModel`` (echoic / converted) or an ``EmbeddingModel``."""


class ModelUnavailable(EchoicError):
    """A registered model whose optional dependencies (or fitted directory) are missing here."""


@dataclass(frozen=True)
class Origin:
    """Where a model's weights come from.

    source: what made them (``"echoic pretrain (eat, step 5000)"``, ``"PyPI aisfx 0.1.2"``, …).
    path: the weights file on disk, where one exists. package_file: ``"package:relative/path"``,
        the weights file inside an installed package (found without importing it).
    hub_id: the public identifier of the weights (a hub repository id), where one exists.
    """

    source: str = ""
    path: str | None = None
    hub_id: str | None = None
    package_file: str | None = None

    @property
    def file(self) -> str | None:
        """``path``, else ``package_file`` resolved in the installed package; None if absent."""
        if self.path is not None:
            return self.path if os.path.isfile(self.path) else None
        if self.package_file is None:
            return None
        package, _, relative = self.package_file.partition(":")
        spec = find_spec(package)
        roots = getattr(spec, "submodule_search_locations", None) or []
        found = [os.path.join(root, relative) for root in roots]
        return next((f for f in found if os.path.isfile(f)), None)

    @property
    def sha256(self) -> str | None:
        """Hex sha256 of :attr:`file` (cached per file size and mtime); None without a file."""
        path = self.file
        if path is None:
            return None
        return cached_file_sha256(path)

    def short(self) -> str:
        """One cell of the ``echoic models`` table: hub id, else the file, else the source."""
        if self.hub_id:
            return self.hub_id
        if self.path:
            try:
                return str(Path(self.path).relative_to(BUNDLED_DIR.parent))
            except ValueError:
                return self.path
        return self.package_file or self.source


@dataclass
class ModelCard:
    """One registered model, described without building it (see the module docstring).

    ``embedding_size``: the size under the model's recommended pooling; ``layer_sizes``: the size
    of each selectable layer where cheaply known (echoic models), else None. ``architecture``: the
    encoder and frontend (echoic) or the adapter class (zoo). ``requires``: importable modules the
    model needs, ``install`` how to get them. ``checkpoint_encoder``: the ``encoder`` name this
    card writes into ``config.json`` of directories it loads (``build(path=dir)``, e.g. ``bow``);
    ``adapt_to_directory(card, config)`` corrects such a directory's card (its sizes).
    ``channels``: audio channels a clip must have (1: mono, a multichannel file is mixed down;
    C > 1: ``(C, S)`` clips, e.g. the spatial tasks' binaural or ambisonic audio).
    """

    name: str
    kind: CardKind
    licence: str
    build: Callable[..., Any]
    sample_rate: int | None = None
    embedding_size: int | None = None
    architecture: str = ""
    layer_sizes: tuple[int, ...] | None = None
    origin: Origin = field(default_factory=Origin)
    requires: tuple[str, ...] = ()
    install: str = ""
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    checkpoint_encoder: str | None = None
    adapt_to_directory: Callable[[ModelCard, ModelConfig], ModelCard] | None = None
    channels: int = 1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"model card {self.name!r}: kind must be one of {KINDS}; found {self.kind!r}. "
                "Set kind to the one that describes where its weights come from."
            )
        if not self.architecture:
            build = self.build
            self.architecture = f"{build.__module__}.{getattr(build, '__qualname__', build)}"

    def missing(self) -> list[str]:
        return [m for m in self.requires if find_spec(m) is None]

    def available(self) -> bool:
        return not self.missing()

    def unavailable_reason(self) -> str | None:
        """One line saying what is missing and how to install it; None when available."""
        missing = self.missing()
        if not missing:
            return None
        how = self.install or "pip install " + " ".join(missing)
        return f"model {self.name!r} needs {', '.join(missing)}, not installed here; install: {how}"

    def check_available(self) -> None:
        """Raise :class:`ModelUnavailable` (one line, with the install hint) when unavailable."""
        reason = self.unavailable_reason()
        if reason:
            raise ModelUnavailable(reason)

    def describe(self) -> dict[str, Any]:
        """The card as JSON-ready values (one row of ``echoic models --json``)."""
        reason = self.unavailable_reason()
        needs = self.extra.get("needs_path")
        return {
            "name": self.name,
            "kind": self.kind,
            "architecture": self.architecture,
            "embedding_size": self.embedding_size,
            "layer_sizes": list(self.layer_sizes) if self.layer_sizes else None,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "licence": self.licence,
            "available": reason is None,
            "status": reason or (f"yes (needs {needs})" if needs else "yes"),
            "install": self.install if reason else "",
            "notes": self.notes,
            "origin": {
                "source": self.origin.source,
                "path": self.origin.file,
                "package_file": self.origin.package_file,
                "sha256": self.origin.sha256,
                "hub_id": self.origin.hub_id,
            },
        }


def find_spec(module: str) -> object | None:
    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a broken parent package, or a stub without __spec__
        return None


def lazy(reference: str, **bound: Any) -> Callable[..., Any]:
    """A card's ``build`` that imports ``"package.module:attribute"`` only when called.

    Card modules declare their models with it, so that listing cards (``echoic models``) imports
    no implementation (and no torch); the card's default ``architecture`` names the reference.
    ``bound``: keyword arguments every call passes (a card for one setting of a configurable
    model, e.g. ``channels=2``); a caller's own keywords override them.
    """
    module, _, attribute = reference.partition(":")
    if not module or not attribute:
        raise ValueError(
            f"lazy reference {reference!r}: expected 'package.module:attribute' "
            "(e.g. 'echoic.zoo.logmel_stats:LogMelStats')"
        )

    def build(*args: Any, **kwargs: Any) -> Any:
        target: Any = importlib.import_module(module)
        for part in attribute.split("."):
            target = getattr(target, part)
        return target(*args, **{**bound, **kwargs})

    build.__module__ = module
    build.__qualname__ = attribute
    build.__doc__ = f"Import {reference} and call it (a lazy card builder)."
    return build
