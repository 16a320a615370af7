"""The model card registry: every model echoic can load, as a card listable without building it.

One name space for every kind of model (timm's ``pretrained_cfg`` idea):

- ``echoic``: an echoic model directory (``model.safetensors`` + ``config.json``); the bundled ones
  under ``src/echoic/models/<name>/`` register themselves, plus ``echoic-untrained-tiny`` and
  ``echoic-default`` (the bundled ``echoic-small`` when it is present);
- ``converted``: the same format, with ``provenance.converted_from`` in its ``config.json``; a
  public checkpoint file or folder that ``echoic.convert`` reads (a Hugging Face wav2vec 2.0 folder,
  …) is converted once into a cached directory of this kind (:data:`RESOLVERS`);
- ``baseline`` / ``peer``: ``echoic.zoo`` entries (``echoic.zoo.registry.register`` registers their
  cards; the zoo package is discovered by name, the first time the registry is read).

A card says what a model is (architecture, sample rate, embedding size of its recommended pooling,
licence, origin with the weights' sha256, install hint) from declarations alone — ``config.json``
for echoic models, the zoo entry's fields otherwise — and how to build it (``build``, called only by
:func:`load`, :func:`echoic.zoo.registry.resolve_model` and the HEAR module). ``build()`` of an
echoic / converted card returns an :class:`~echoic.checkpoint.EchoicModel`; ``build(**options)``
of a baseline / peer card returns an :class:`~echoic.embed.base.EmbeddingModel`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from echoic.card_base import ECHOIC_KINDS as ECHOIC_KINDS
from echoic.card_base import KINDS as KINDS
from echoic.card_base import CardKind as CardKind
from echoic.card_base import LoadedModel as LoadedModel
from echoic.card_base import ModelCard as ModelCard
from echoic.card_base import ModelUnavailable as ModelUnavailable
from echoic.card_base import Origin as Origin
from echoic.card_base import lazy as lazy
from echoic.errors import CheckpointError
from echoic.hub import hub_snapshot, is_hub_name
from echoic.model_format import (
    BUNDLED_DEFAULT,
    BUNDLED_DIR,
    CONFIG_FILE,
    DEFAULT_MODEL,
    WEIGHTS_FILE,
    DeclaredSizes,
    ModelConfig,
    read_config,
    stored_sizes,
)
from echoic.registry import Registry, unknown_name_message

if TYPE_CHECKING:
    from echoic.checkpoint import EchoicModel

# name → card; reading it imports every module of echoic.zoo.cards once (they register their
# cards). Card modules import no implementation: builders are lazy references.
CARDS: Registry[ModelCard] = Registry("model", discover_package="echoic.zoo.cards")


def register_card(card: ModelCard) -> ModelCard:
    """Add ``card`` to :data:`CARDS` (names are unique across every kind)."""
    CARDS.register(card.name, card)
    return card


def list_cards() -> list[ModelCard]:
    """Every registered card, sorted by name; nothing is built."""
    return [card for _, card in CARDS.items()]


def writer_card(encoder: str) -> ModelCard | None:
    """The registered card whose model directories name ``encoder`` in ``config.json``."""
    return next((c for c in list_cards() if c.checkpoint_encoder == encoder), None)


# ---------------------------------------------------------------- echoic model directories
def declared_sizes(config: ModelConfig, directory: Path | None = None) -> DeclaredSizes:
    """``(sample_rate, embedding_size, layer_sizes)`` of an echoic model, declared without building.

    Read from the ``card`` block of ``directory``'s config.json when it holds one computed from
    these very fields (``echoic.save`` writes it), else computed from the encoder and frontend
    registries (:func:`echoic.checkpoint.compute_sizes`, which imports them).
    """
    if directory is not None:
        stored = stored_sizes(directory, config)
        if stored is not None:
            return stored
    from echoic.checkpoint import compute_sizes

    return compute_sizes(config)


def _source(config: ModelConfig) -> str:
    provenance = config.provenance
    if provenance.get("converted_from"):
        return f"converted from {provenance['converted_from']}"
    source = str(provenance.get("origin") or "echoic")
    if config.objective:
        source += f" ({config.objective}, step {config.step})"
    return source


def echoic_card(
    config: ModelConfig,
    name: str,
    build: Callable[[], EchoicModel],
    weights: Path | None,
    sizes: DeclaredSizes | None = None,
) -> ModelCard:
    """The card of an echoic (or converted) model described by ``config`` (``sizes``: declared
    ones, else :func:`declared_sizes` of the weights' directory)."""
    kind: CardKind = "converted" if config.provenance.get("converted_from") else "echoic"
    directory = weights.parent if weights is not None else None
    rate, size, layers = sizes or declared_sizes(config, directory)
    label = config.name or name
    return ModelCard(
        name=name,
        kind=kind,
        licence=config.licence or "unknown",
        build=build,
        sample_rate=rate,
        embedding_size=size,
        architecture=f"{config.encoder} on {config.frontend}",
        layer_sizes=layers,
        origin=Origin(
            source=_source(config),
            path=str(weights) if weights is not None and weights.is_file() else None,
            hub_id=config.provenance.get("hub_id"),
        ),
        notes=f"{label} (UNTRAINED: random weights)" if config.untrained else label,
    )


def directory_card(path: str | os.PathLike[str], name: str | None = None) -> ModelCard:
    """The card of a model directory: an echoic / converted model, or one a zoo card wrote.

    Raises :class:`~echoic.errors.CheckpointError` when ``config.json`` is missing, of another
    format version, or names an encoder that nothing registered reads.
    """
    path = Path(path)
    config = read_config(path)
    name = name or str(path)
    build = functools.partial(_load_dir, path)
    stored = stored_sizes(path, config)
    if stored is not None:  # written by echoic.save: an echoic encoder, sizes declared
        return echoic_card(config, name, build, path / WEIGHTS_FILE, stored)
    from echoic.encoders.registry import ENCODERS

    if config.encoder in ENCODERS:
        return echoic_card(config, name, build, path / WEIGHTS_FILE)
    writer = writer_card(config.encoder)
    if writer is None:
        writers = [c.checkpoint_encoder for c in list_cards() if c.checkpoint_encoder]
        valid = sorted({*ENCODERS.names(), *writers})
        raise CheckpointError(
            f"{path / CONFIG_FILE}: "
            + unknown_name_message("encoder", config.encoder, valid)
            + " Save echoic models with echoic.save, or fit a zoo model (echoic fit-bow)."
        )
    weights = path / WEIGHTS_FILE
    card = dataclasses.replace(
        writer,
        name=name,
        build=functools.partial(writer.build, path=str(path)),
        licence=config.licence or writer.licence,
        origin=Origin(
            source=str(config.provenance.get("origin") or f"fitted {writer.name} directory"),
            path=str(weights) if weights.is_file() else None,
        ),
        notes=f"{writer.name} model directory {path}",
    )
    return writer.adapt_to_directory(card, config) if writer.adapt_to_directory else card


# ---------------------------------------------------------------- public checkpoints
RawCheckpointResolver: TypeAlias = Callable[[Path], Path | None]
RESOLVERS: Registry[RawCheckpointResolver] = Registry(
    "checkpoint resolver", discover_package="echoic.convert"
)
"""Hooks turning a public checkpoint file or folder (not an echoic model directory) into a
converted model directory, or None when they do not read it. ``echoic.convert`` registers its
converter registry here; the package is discovered by name, like ``echoic.zoo`` for CARDS, because
it sits above this layer."""


def _is_model_dir(path: Path) -> bool:
    """A folder holding an echoic ``config.json`` (one with a ``format_version``)."""
    config = path / CONFIG_FILE
    if not config.is_file():
        return False
    try:
        return "format_version" in json.loads(config.read_text())
    except (ValueError, OSError):
        return False


def converted_dir(path: str | os.PathLike[str]) -> Path | None:
    """The converted model directory of a public checkpoint (converted once, then cached; see
    docs/converting.md), or None when ``path`` is an echoic directory or nothing reads it."""
    path = Path(path)
    if not path.exists() or (path.is_dir() and _is_model_dir(path)):
        return None
    for _, resolve in RESOLVERS.items():
        converted = resolve(path)
        if converted is not None:
            return converted
    return None


def hub_card(name: str) -> ModelCard:
    """The card of ``hf:ORG/NAME[@REVISION]``: the repository's snapshot (downloaded, or from the
    hub cache with ``HF_HUB_OFFLINE=1``; :mod:`echoic.hub`) read as an echoic model directory, or
    converted once like any public checkpoint folder."""
    folder = hub_snapshot(name)
    if _is_model_dir(folder):
        return directory_card(folder, name=name)
    converted = converted_dir(folder)
    if converted is None:
        raise CheckpointError(
            f"{name}: fetched to {folder}, but no converter reads it (files: "
            f"{sorted(p.name for p in folder.iterdir())[:8]}); `echoic convert --list` names the "
            "formats echoic reads."
        )
    return directory_card(converted, name=name)


def find_card(name_or_dir: str | os.PathLike[str] = DEFAULT_MODEL) -> ModelCard:
    """The card of a model directory, a public checkpoint or a registered name (nothing is built).

    An existing path wins over a registered name: an echoic model directory as it is, a public
    checkpoint file or folder that a converter reads (``echoic convert``) as its converted, cached
    model directory. ``hf:ORG/NAME`` is a Hugging Face Hub repository (:func:`hub_card`). An
    unknown name raises :class:`~echoic.errors.CheckpointError` naming the nearest registered name.
    """
    if is_hub_name(name_or_dir):
        return hub_card(str(name_or_dir))
    path = Path(name_or_dir)
    converted = converted_dir(path)
    if converted is not None:
        return directory_card(converted, name=str(path))
    if path.is_dir():
        return directory_card(path)
    name = str(name_or_dir)
    if name in CARDS:
        return CARDS.get(name)
    raise CheckpointError(
        unknown_name_message("model", name, CARDS.names())
        + f" Or pass a directory holding {WEIGHTS_FILE} + {CONFIG_FILE} (written by echoic.save"
        " or echoic fit-bow); echoic models lists every name."
    )


def load(name_or_dir: str | os.PathLike[str] = DEFAULT_MODEL) -> LoadedModel:
    """Build the model a name or directory stands for (``echoic.load``).

    Echoic and converted models (bundled names, model directories) come back as an
    :class:`~echoic.checkpoint.EchoicModel` in eval mode, exactly as before; baselines, peers and
    directories they wrote (a fitted ``bow``) as the :class:`~echoic.embed.base.EmbeddingModel`
    their card builds with its default options. Raises :class:`ModelUnavailable` (with the install
    hint) for a peer whose package is missing here.
    """
    card = find_card(name_or_dir)
    card.check_available()
    return card.build()


# ---------------------------------------------------------------- the built-in echoic cards
UNTRAINED_TINY = ModelConfig(
    encoder="vit_tiny",
    frontend="kaldi_fbank",
    name="echoic-untrained-tiny",
    untrained=True,
    licence="Apache-2.0",
    provenance={"origin": "fixed random initialisation", "seed": 0},
)


UNTRAINED_TINY_SIZES: DeclaredSizes = (16000, 192, (192,) * 13)
"""Its sizes (``vit_tiny``'s 192-d, 12 blocks + the token embedding), declared so that listing it
needs no encoder registry; the card contract test checks them against the registry."""


def _load_dir(path: Path) -> EchoicModel:
    from echoic.checkpoint import load_dir

    return load_dir(path)


def untrained_tiny() -> EchoicModel:
    """``vit_tiny`` on Kaldi fbank drawn with seed 0 (the global RNG state is left untouched)."""
    import torch

    from echoic.checkpoint import EchoicModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = EchoicModel(UNTRAINED_TINY)
    return model.eval()


def _register_builtin() -> None:
    untrained = echoic_card(
        UNTRAINED_TINY, "echoic-untrained-tiny", untrained_tiny, None, UNTRAINED_TINY_SIZES
    )
    register_card(untrained)
    bundled = sorted(BUNDLED_DIR.glob(f"*/{CONFIG_FILE}")) if BUNDLED_DIR.is_dir() else []
    for config_path in bundled:
        register_card(directory_card(config_path.parent, name=config_path.parent.name))
    # The default: the bundled trained model (docs/models/echoic-small.md); a checkout without it
    # falls back to the untrained tiny encoder, which says UNTRAINED wherever it is named.
    if (BUNDLED_DIR / BUNDLED_DEFAULT / CONFIG_FILE).is_file():
        default, same_as = directory_card(BUNDLED_DIR / BUNDLED_DEFAULT), BUNDLED_DEFAULT
    else:
        default, same_as = untrained, untrained.name
    notes = f"{default.notes}; the default (= {same_as})"
    register_card(dataclasses.replace(default, name=DEFAULT_MODEL, notes=notes))


_register_builtin()
