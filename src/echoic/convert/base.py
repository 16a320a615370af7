"""The Converter contract and what every converter shares.

A converter maps one public on-disk checkpoint format onto an echoic encoder family
(``convert/<source>.py``, registered with :func:`echoic.convert.registry.register`). It says whether
it reads a path (``detect``, cheap: file names and small JSON files, never a pickle's code) and
writes an echoic model directory from it (``convert``): ``model.safetensors`` + ``config.json``
whose ``provenance`` names the source (``converted_from``, ``format``, ``origin`` file name,
``sha256``, ``licence``) and whose frontend is the one the weights were trained with. Every source
weight is either mapped or dropped by name (:class:`StateReader`); anything left over is an error,
so a variant the converter does not know fails loudly instead of losing weights.
"""

from __future__ import annotations

import abc
import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load_file

from echoic.checkpoint import EchoicModel, ModelConfig, save
from echoic.convert.pickle_scan import checkpoint_file, pickled_names
from echoic.convert.safe_pickle import load_pickle
from echoic.data.hashing import cached_file_sha256
from echoic.errors import CheckpointError

__all__ = [
    "CheckpointFileConverter",
    "ConversionError",
    "Converter",
    "StateReader",
    "fuse_qkv",
    "model_state",
    "provenance",
    "read_weights",
    "sha256_file",
    "sha256_files",
    "strip_data_parallel",
    "tensor_dict",
    "weight_norm_pair",
    "write_model",
]


class ConversionError(CheckpointError):
    """A checkpoint could not be mapped onto an echoic encoder (what was found, and why)."""


class Converter(abc.ABC):
    """One public checkpoint format → echoic model directories.

    ``name`` is the FORMAT of ``echoic convert FORMAT CKPT``; ``reference`` the implementation the
    parity test (``tests/convert/``) compares with; ``version`` keys the converted-model cache of
    ``echoic.load`` (bump it when a converter's output changes).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    reference: ClassVar[str]
    version: ClassVar[int] = 1

    @abc.abstractmethod
    def detect(self, path: Path) -> bool:
        """Whether ``path`` (a file or folder) is in this format; never runs a pickle."""

    @abc.abstractmethod
    def source_files(self, path: Path) -> list[Path]:
        """The files whose bytes define the model at ``path`` (hashed for provenance and cache)."""

    @abc.abstractmethod
    def convert(self, path: Path, out_dir: Path, trust_pickle: bool = False) -> Path:
        """Write the echoic model directory of ``path`` to ``out_dir``; returns ``out_dir``.
        Pickled files are read safely (:mod:`echoic.convert.safe_pickle`) unless ``trust_pickle``."""


class CheckpointFileConverter(Converter):
    """A format saved as one torch checkpoint file (the file itself, or a folder holding only
    it: :func:`~echoic.convert.pickle_scan.checkpoint_file`), recognised by the names its pickle
    holds (never run) and hashed as that one file."""

    file_kind: ClassVar[str] = "checkpoint file"
    """What the file is, for the error when ``path`` holds none (``"PaSST checkpoint file (.pt)"``)."""

    @abc.abstractmethod
    def recognises(self, file: Path, names: set[str]) -> bool:
        """Whether ``file``, whose pickle holds the strings ``names``, is in this format."""

    def detect(self, path: Path) -> bool:
        file = checkpoint_file(path)
        return file is not None and self.recognises(file, pickled_names(file))

    def source_files(self, path: Path) -> list[Path]:
        file = checkpoint_file(path)
        return [file] if file is not None else []

    def checkpoint(self, path: Path) -> Path:
        """The checkpoint file of ``path``, or a :class:`ConversionError` saying there is none."""
        file = checkpoint_file(path)
        if file is None:
            raise ConversionError(f"{path}: no {self.file_kind} found.")
        return file


# ---------------------------------------------------------------- hashing
def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes (computed once per file path, size and mtime in a process)."""
    return cached_file_sha256(path)


def sha256_files(paths: Iterable[Path]) -> str:
    """One hex sha256 for several files: of their names and contents' digests, in name order."""
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        digest.update(f"{path.name}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


# ---------------------------------------------------------------- reading weights
def read_weights(path: Path, trust_pickle: bool = False) -> Any:
    """A weights file's content: a ``{name: tensor}`` dict for ``.safetensors``, the unpickled
    object (read safely unless ``trust_pickle``) for torch pickles."""
    if path.suffix == ".safetensors":
        return load_file(str(path))
    return load_pickle(path, trust_pickle=trust_pickle)


def tensor_dict(value: Any, where: str) -> dict[str, torch.Tensor]:
    """``value`` checked to be a ``{str: tensor}`` mapping (a state dict)."""
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()
    ):
        raise ConversionError(
            f"{where}: expected a state dict (names → tensors); found {type(value).__name__}."
        )
    return dict(value)


def model_state(dump: Any, where: str) -> dict[str, torch.Tensor]:
    """The state dict of a loaded checkpoint: ``dump["model"]`` when that is a mapping (the
    ``{"model": state dict, "optimizer", …}`` training checkpoints), else ``dump`` itself, without
    a ``module.`` prefix (:func:`strip_data_parallel`)."""
    if isinstance(dump, Mapping) and isinstance(dump.get("model"), Mapping):
        dump = dump["model"]
    return strip_data_parallel(tensor_dict(dump, where))


def strip_data_parallel(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` without the ``module.`` prefix that ``nn.DataParallel`` / DDP wrappers add (once
    or nested), when every key carries it."""
    out = dict(state)
    while out and all(key.startswith("module.") for key in out):
        out = {key[len("module.") :]: value for key, value in out.items()}
    return out


class StateReader:
    """Take source weights by name; at :meth:`finish`, every weight must have been taken or
    dropped by a pattern, or the conversion fails naming the leftovers."""

    def __init__(self, state: Mapping[str, torch.Tensor], where: str) -> None:
        self.state = dict(state)
        self.where = where
        self.taken: set[str] = set()
        self.dropped: list[str] = []

    def __contains__(self, key: str) -> bool:
        return key in self.state

    def take(self, key: str) -> torch.Tensor:
        if key not in self.state:
            raise ConversionError(
                f"{self.where}: weight {key!r} is missing; the checkpoint does not match its "
                "config (or is a variant this converter does not know)."
            )
        self.taken.add(key)
        return self.state[key]

    def take_first(self, *keys: str) -> torch.Tensor:
        """The first of ``keys`` present (alternative spellings of one weight)."""
        for key in keys:
            if key in self.state:
                return self.take(key)
        return self.take(keys[0])

    def drop(self, pattern: str) -> None:
        """Mark weights whose full name matches the regular expression ``pattern`` as unused."""
        regex = re.compile(pattern)
        for key in self.state:
            if key not in self.taken and regex.fullmatch(key):
                self.taken.add(key)
                self.dropped.append(key)

    def finish(self) -> None:
        left = sorted(set(self.state) - self.taken)
        if left:
            more = f" (and {len(left) - 5} more)" if len(left) > 5 else ""
            raise ConversionError(
                f"{self.where}: {len(left)} weight(s) not mapped onto the echoic encoder: "
                f"{left[:5]}{more}; this variant is not supported yet."
            )


# ---------------------------------------------------------------- shared weight transforms
def fuse_qkv(
    q: tuple[torch.Tensor, torch.Tensor | None],
    k: tuple[torch.Tensor, torch.Tensor | None],
    v: tuple[torch.Tensor, torch.Tensor | None],
) -> dict[str, torch.Tensor]:
    """Separate q / k / v projections (``(weight (D, D), bias (D,) or None)`` each) as echoic's
    fused ``qkv`` Linear (:class:`~echoic.layers.Attention`: output rows ``[q | k | v]``). A
    missing bias (k in fairseq-style ``k_proj`` without bias) becomes zeros when others have one."""
    out = {"weight": torch.cat([q[0], k[0], v[0]], dim=0)}
    biases = [q[1], k[1], v[1]]
    if any(b is not None for b in biases):
        filled = [
            b if b is not None else torch.zeros(w.shape[0])
            for b, w in zip(biases, (q[0], k[0], v[0]), strict=True)
        ]
        out["bias"] = torch.cat(filled, dim=0)
    return out


def weight_norm_pair(
    weight: torch.Tensor | None = None,
    weight_g: torch.Tensor | None = None,
    weight_v: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(g, v)`` of a weight norm over dim 2 (wav2vec 2.0's positional convolution): passed
    through when the checkpoint stores them, else derived from a plain ``weight`` ``(D, D/G, K)``
    (``g`` = its norm per kernel tap, ``v`` = the weight), which reproduces it exactly."""
    if weight_g is not None and weight_v is not None:
        return weight_g, weight_v
    if weight is None:
        raise ConversionError("a weight-normed convolution needs weight_g + weight_v, or weight.")
    return torch.linalg.vector_norm(weight, dim=(0, 1), keepdim=True), weight


# ---------------------------------------------------------------- writing the model directory
def write_model(
    config: ModelConfig, encoder_state: Mapping[str, torch.Tensor], out_dir: Path
) -> Path:
    """Build the echoic model of ``config``, load ``encoder_state`` into its encoder (every weight,
    shapes checked) and save it to ``out_dir`` (:func:`echoic.checkpoint.save`)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the random init is overwritten; keep the caller's RNG untouched
        model = EchoicModel(config)
    expected = model.encoder.state_dict()
    missing = sorted(set(expected) - set(encoder_state))
    unknown = sorted(set(encoder_state) - set(expected))
    if missing or unknown:
        raise ConversionError(
            f"converter bug: encoder weights missing {missing[:5]}, unexpected {unknown[:5]}."
        )
    for key, value in encoder_state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ConversionError(
                f"weight {key!r} has shape {tuple(value.shape)}; the encoder config gives "
                f"{tuple(expected[key].shape)}."
            )
    state = {k: v.to(expected[k].dtype).contiguous() for k, v in encoder_state.items()}
    model.encoder.load_state_dict(state, strict=True)
    return save(model.eval(), out_dir)


def provenance(
    converter: Converter, path: Path, files: list[Path], licence: str, **extra: Any
) -> dict[str, Any]:
    """The ``provenance`` of a converted model: where it came from and how it was converted."""
    weights = [f for f in files if f.suffix in {".safetensors", ".bin", ".pt", ".ckpt", ".pth"}]
    origin = weights[0] if len(weights) == 1 else path
    return {
        "converted_from": str(path.name),
        "format": converter.name,
        "origin": origin.name,
        "sha256": sha256_file(origin) if origin.is_file() else sha256_files(files),
        "files": {f.name: sha256_file(f) for f in sorted(files)},
        "licence": licence,
        "converter_version": converter.version,
        **extra,
    }
