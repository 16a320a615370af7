"""What the Hugging Face folder converters share (``hf-wav2vec2``, ``hf-ast``, ``hf-whisper``):
finding the folder, its ``config.json`` and weight files (sharded indexes too), the licence and
hub id it declares, and :class:`HFFolderConverter`, which detects a folder by its ``model_type``
and reads its weights."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar

import torch

from echoic.convert.base import (
    ConversionError,
    Converter,
    read_weights,
    strip_data_parallel,
    tensor_dict,
)

__all__ = [
    "WEIGHT_FILES",
    "HFFolderConverter",
    "folder_of",
    "hub_id",
    "licence_of",
    "read_json",
    "weight_files",
]

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def folder_of(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def weight_files(folder: Path) -> list[Path]:
    """The weight files of a transformers folder (the shards of an index), safetensors first."""
    for name in WEIGHT_FILES:
        candidate = folder / name
        if not candidate.is_file():
            continue
        if name.endswith(".index.json"):
            shards = sorted(set(read_json(candidate).get("weight_map", {}).values()))
            return [folder / shard for shard in shards]
        return [candidate]
    return []


def licence_of(folder: Path) -> str:
    """``license:`` of a hub README's YAML front matter, else ``"unknown"``."""
    readme = folder / "README.md"
    if not readme.is_file():
        return "unknown"
    text = readme.read_text(errors="replace")
    front = re.match(r"---\n(.*?)\n---", text, re.DOTALL)
    found = re.search(r"^licen[cs]e:\s*(\S+)", front.group(1), re.MULTILINE) if front else None
    return found.group(1).strip("'\"") if found else "unknown"


def hub_id(name: Any) -> str | None:
    """``_name_or_path`` when it is a hub id (``owner/name``), not a local path."""
    text = str(name or "")
    return text if re.fullmatch(r"[\w.-]+/[\w.-]+", text) and not Path(text).exists() else None


class HFFolderConverter(Converter):
    """A transformers folder recognised by ``config.json``'s ``model_type`` (one of
    ``model_types``) beside its weights; ``source_files`` adds the configs to the weights."""

    model_types: ClassVar[frozenset[str]]
    folder_kind: ClassVar[str]
    """For the error when a folder is not of this kind (``"transformers AST folder"``)."""

    def detect(self, path: Path) -> bool:
        if path.is_file() and path.name != "config.json" and path.name not in WEIGHT_FILES:
            return False
        folder = folder_of(path)
        config = folder / "config.json"
        return (
            config.is_file()
            and read_json(config).get("model_type") in self.model_types
            and bool(weight_files(folder))
        )

    def source_files(self, path: Path) -> list[Path]:
        folder = folder_of(path)
        extra = [folder / n for n in ("config.json", "preprocessor_config.json")]
        return [*weight_files(folder), *(f for f in extra if f.is_file())]

    def read_folder(
        self, path: Path, trust_pickle: bool
    ) -> tuple[Path, dict[str, Any], dict[str, torch.Tensor]]:
        """``(folder, config.json, state dict)``: every weight file read (DataParallel prefixes
        stripped); a folder of another kind is a :class:`ConversionError`."""
        folder = folder_of(path)
        hf = read_json(folder / "config.json")
        if hf.get("model_type") not in self.model_types or not weight_files(folder):
            raise ConversionError(f"{folder}: not a {self.folder_kind}.")
        state: dict[str, torch.Tensor] = {}
        for file in weight_files(folder):
            state.update(tensor_dict(read_weights(file, trust_pickle), str(file)))
        return folder, hf, strip_data_parallel(state)
