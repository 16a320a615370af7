"""The model directory format, readable without torch: file names, :class:`ModelConfig`, reading.

A model directory is ``model.safetensors`` + ``config.json``; this module holds what describes it
without building a model (the names, the config dataclass, :func:`read_config`), so that listing
and describing models (``echoic models``, ``echoic info``, CLI defaults) never imports torch.
:mod:`echoic.checkpoint` builds, loads and saves models and re-exports everything here.
"""

from __future__ import annotations

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
    "ModelConfig",
    "atomic_write",
    "read_config",
]

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
DEFAULT_MODEL = "echoic-default"
BUNDLED_DEFAULT = "echoic-tiny"  # what echoic-default loads when it is bundled
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
