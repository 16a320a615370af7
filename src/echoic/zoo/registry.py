"""Named embedding models beyond echoic checkpoints: baselines and offline peer adapters.

Every zoo module declares its model with a :class:`~echoic.cards.ModelCard` (``ZooEntry`` is the
same class) and :func:`register` puts it into the one model registry, :data:`echoic.cards.CARDS`;
the zoo package is discovered by name the first time that registry is read, so dropping a module
into ``echoic.zoo`` is enough. Every card builds an :class:`~echoic.embed.base.EmbeddingModel`, so
it works wherever a model name is accepted (``echoic embed``, ``echoic eval``, ``echoic.load``).
:func:`resolve_model` turns any name or directory into an ``EmbeddingModel`` through the card
registry: registered names (every kind), directories written by a zoo card (``config.json``
naming its ``checkpoint_encoder``, e.g. a fitted ``bow``) and echoic model directories.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from echoic.cards import (
    CARDS,
    ECHOIC_KINDS,
    ModelCard,
    ModelUnavailable,
    find_card,
    register_card,
    writer_card,
)
from echoic.errors import ConfigError
from echoic.model_format import CONFIG_FILE, read_config
from echoic.registry import RegistryError, unknown_name_message

if TYPE_CHECKING:
    from echoic.embed.base import EmbeddingModel

__all__ = [
    "KINDS",
    "ZOO",
    "ModelUnavailable",
    "ZooEntry",
    "entry_for_directory",
    "register",
    "resolve_model",
]


class CardView:
    """The cards of some kinds, read through :data:`echoic.cards.CARDS` (compatibility: ``ZOO``)."""

    def __init__(self, kinds: tuple[str, ...]) -> None:
        self.kinds = kinds

    def items(self) -> Iterator[tuple[str, ModelCard]]:
        return iter([(n, c) for n, c in CARDS.items() if c.kind in self.kinds])

    def names(self) -> list[str]:
        return [name for name, _ in self.items()]

    def get(self, name: str) -> ModelCard:
        card = CARDS.get(name)
        if card.kind not in self.kinds:
            raise RegistryError(
                unknown_name_message(f"{'/'.join(self.kinds)} model", name, self.names())
            )
        return card

    def __contains__(self, name: object) -> bool:
        return name in CARDS and CARDS.get(str(name)).kind in self.kinds

    def __len__(self) -> int:
        return len(self.names())


KINDS = ("baseline", "peer")  # the kinds a zoo module registers
ZooEntry = ModelCard  # the zoo's name for a card (kept for the zoo modules and their callers)
ZOO = CardView(KINDS)  # the baseline and peer cards of echoic.cards.CARDS (read-only view)


def register(entry: ModelCard) -> ModelCard:
    """Register a zoo model's card in :data:`echoic.cards.CARDS` (the one registry of names)."""
    if entry.kind not in KINDS:
        raise ValueError(
            f"zoo model {entry.name!r}: kind must be one of {KINDS}; found {entry.kind!r}. Echoic "
            "and converted models are model directories: bundle one under src/echoic/models/<name>/"
        )
    return register_card(entry)


def entry_for_directory(path: str | os.PathLike[str]) -> ModelCard | None:
    """The registered zoo card that wrote model directory ``path`` (by its config's encoder)."""
    path = Path(path)
    if not (path / CONFIG_FILE).is_file():
        return None
    return writer_card(read_config(path).encoder)


def resolve_model(name_or_path: str | os.PathLike[str], **options: Any) -> EmbeddingModel:
    """The :class:`~echoic.embed.base.EmbeddingModel` of a registered name or model directory.

    Resolved by :func:`echoic.cards.find_card`. Echoic and converted models come wrapped in an
    :class:`~echoic.embed.embedder.Embedder` (``options``: ``EmbedConfig`` fields); other cards are
    built with ``options``. ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"``) works for
    every card: a model that can only run on the CPU warns and stays there. Raises
    :class:`ModelUnavailable` for a peer missing its package.
    """
    card = find_card(name_or_path)
    card.check_available()
    if card.kind in ECHOIC_KINDS:
        from echoic.embed.embedder import Embedder

        return Embedder(card.build(), **options)
    device = options.pop("device", None)
    model = card.build(**options)
    if device is None:
        return model
    move = getattr(model, "to_device", None)
    if move is None:
        raise ConfigError(
            f"model {card.name!r} ({type(model).__name__}) takes no device option: it has no "
            "to_device method; leave the device out (it runs on the CPU)"
        )
    return cast("EmbeddingModel", move(device))
