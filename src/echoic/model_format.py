"""The model directory format, readable without torch: file names, :class:`ModelConfig`, reading.

A model directory is ``model.safetensors`` + ``config.json``; this module holds what describes it
without building a model (the names, the config dataclass, :func:`read_config`), so that listing
and describing models (``echoic models``, ``echoic info``, CLI defaults) never imports torch.
:mod:`echoic.checkpoint` builds, loads and saves models and re-exports everything here.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from echoic.config import from_dict
from echoic.errors import CheckpointError

__all__ = [
    "BUNDLED_DEFAULT",
    "BUNDLED_DIR",
    "CONFIG_FILE",
    "DEFAULT_MODEL",
    "FORMAT_VERSION",
    "WEIGHTS_FILE",
    "DeclaredSizes",
    "ModelConfig",
    "atomic_write",
    "read_config",
    "size_key",
    "sizes_block",
    "stored_sizes",
]

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
DEFAULT_MODEL = "echoic-default"
BUNDLED_DEFAULT = "echoic-small"  # what echoic-default loads when it is bundled
BUNDLED_DIR = Path(__file__).resolve().parent / "models"


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model (weights aside)."""

    encoder: str = "vit_tiny"
    encoder_config: dict[str, Any] = field(default_factory=dict)
    frontend: str = "kaldi_fbank"
    frontend_config: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    untrained: bool = False
    objective: str | None = None
    step: int = 0
    data_hash: str | None = None
    licence: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    embed: dict[str, Any] = field(default_factory=dict)
    """The model's recommended :class:`~echoic.embed.embedder.EmbedConfig` fields (e.g.
    ``{"layer": "mean", "freq_pool": "concat"}``); an Embedder starts from these, and explicit
    settings override them."""


def read_config(path: str | os.PathLike[str]) -> ModelConfig:
    """The :class:`ModelConfig` of a model directory, checking the format version."""
    cfg_path = Path(path) / CONFIG_FILE
    if not cfg_path.is_file():
        raise CheckpointError(
            f"{path}: expected a model directory with {CONFIG_FILE}; found none. "
            "Save models with echoic.save(model, dir)."
        )
    raw = json.loads(cfg_path.read_text())
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{cfg_path}: format_version {version!r} is not supported (expected {FORMAT_VERSION}); "
            "upgrade echoic or re-export the model."
        )
    return from_dict(ModelConfig, raw.get("model"), where=str(cfg_path))


def atomic_write(target: Path, write: Callable[[str], object]) -> None:
    """Run ``write(tmp_path)`` then rename onto ``target``: readers never see a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


DeclaredSizes = tuple[int, int, tuple[int, ...]]
"""``(sample_rate, embedding_size, layer_sizes)`` of an echoic model (:func:`stored_sizes`)."""

SIZES_KEY = "card"  # the top-level config.json block holding the declared sizes


def size_key(config: ModelConfig) -> str:
    """A digest of the fields the sizes follow from (encoder, frontend, their configs, the
    recommended frequency pooling): a ``card`` block whose key differs is stale."""
    fields = {
        "encoder": config.encoder,
        "encoder_config": config.encoder_config,
        "frontend": config.frontend,
        "frontend_config": config.frontend_config,
        "freq_pool": config.embed.get("freq_pool"),
    }
    text = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def sizes_block(config: ModelConfig, sizes: DeclaredSizes) -> dict[str, Any]:
    """The ``card`` block :func:`echoic.checkpoint.save` writes beside ``model`` in config.json."""
    rate, size, layers = sizes
    return {
        "sample_rate": int(rate),
        "embedding_size": int(size),
        "layer_sizes": [int(n) for n in layers],
        "key": size_key(config),
    }


def stored_sizes(path: str | os.PathLike[str], config: ModelConfig) -> DeclaredSizes | None:
    """The sizes a model directory's ``config.json`` declares (written by ``echoic.save``), or None
    when it declares none or they were computed from other fields (their key differs from
    :func:`size_key` of ``config``) — then the caller computes them from the encoder registry."""
    try:
        block = json.loads((Path(path) / CONFIG_FILE).read_text()).get(SIZES_KEY)
    except (OSError, ValueError):
        return None
    if not isinstance(block, dict) or block.get("key") != size_key(config):
        return None
    try:
        layers = tuple(int(n) for n in block["layer_sizes"])
        return int(block["sample_rate"]), int(block["embedding_size"]), layers
    except (KeyError, TypeError, ValueError):
        return None
