"""The :class:`Tokenizer` contract, the tokenizer registry, and saving / loading fitted ones.

A tokenizer turns frame vectors into discrete ids::

    tokenizer = build_tokenizer("kmeans", input_dim=768, config={"n_clusters": 100})
    tokenizer.fit([frames_of_clip_1, frames_of_clip_2, ...])      # each (T_i, input_dim)
    ids = tokenizer(frames)                                        # (b, T, D) -> (b, T, n_codebooks)
    tokenizer.save("tok/")                                         # safetensors + JSON sidecar
    same = load_tokenizer("tok/")

* ``forward(frames (b, T, input_dim), padding_mask (b, T) | None) -> ids (b, T, n_codebooks)``
  int64 in ``[0, codebook_sizes[c])``, on the frames' device, without gradients; the ids of
  padded frames are valid but meaningless. Batched so that an objective can call it on every
  training batch (``tokenizer.to(device)`` first).
* ``fit(inputs, targets=None) -> stats``: ``inputs`` are sequences ``(T_i, input_dim)`` (clips);
  tokenizers trained by distillation (``beats_acoustic``) also take ``targets`` ``(T_i,
  target_dim)``, the teacher's frames of the same clips at the same times. Every random choice is
  drawn from ``config.seed``: the same data and seed give the same ids. ``kmeans`` goes on from
  its current state when fitted again (resumable from a saved state).
* Where the frames come from (a model's layer, its acoustic input, MFCCs) and their hop are
  recorded in ``source`` and ``frame_hop_ms``; the tokenizer itself only sees vectors.

Every state a tokenizer needs (codebooks, normalisation statistics, k-means counts) is a
parameter or buffer, so ``state_dict`` is all there is to save; no pickle is ever written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from echoic.config import from_dict, to_dict
from echoic.errors import CheckpointError, ConfigError
from echoic.registry import Registry

__all__ = [
    "FORMAT_VERSION",
    "SIDECAR_FILE",
    "TOKENIZERS",
    "WEIGHTS_FILE",
    "Tokenizer",
    "build_tokenizer",
    "load_tokenizer",
    "register",
]

FORMAT_VERSION = 1
WEIGHTS_FILE = "tokenizer.safetensors"
SIDECAR_FILE = "tokenizer.json"

TOKENIZERS: Registry[type[Tokenizer]] = Registry("tokenizer", discover_package="echoic.tokenizers")
"""name → Tokenizer subclass; modules of ``echoic.tokenizers`` register themselves."""


class Tokenizer(nn.Module):
    """Base class of tokenizers (see module docstring). Subclasses set ``name`` and
    ``config_class`` (a dataclass with a ``seed`` field) and implement :meth:`codebook_sizes`,
    :meth:`encode` and :meth:`fit`."""

    name: ClassVar[str] = ""
    config_class: ClassVar[type[Any]]
    uses_targets: ClassVar[bool] = False
    """Whether :meth:`fit` learns to predict ``targets`` (a teacher's frames) from the inputs."""

    def __init__(self, input_dim: int, config: Any, target_dim: int | None = None) -> None:
        super().__init__()
        if input_dim < 1:
            raise ConfigError(f"tokenizer {self.name!r} needs input_dim >= 1; found {input_dim}.")
        self.input_dim = int(input_dim)
        self.target_dim = int(target_dim) if target_dim is not None else self.input_dim
        self.config = config
        self.source: dict[str, Any] = {}
        """Where the frames come from (model, layer, input kind): recorded by whoever fits."""
        self.frame_hop_ms: float | None = None
        """Milliseconds between frames, recorded by whoever fits (None: unknown)."""
        self.fit_stats: dict[str, float] = {}
        self.fitted: torch.Tensor
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    # ------------------------------------------------------------------ to implement
    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        """Ids per codebook, one entry per codebook."""
        raise NotImplementedError

    def encode(self, frames: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        """``(b, T, input_dim)`` float → ``(b, T, n_codebooks)`` int64 (called without grad)."""
        raise NotImplementedError

    def fit(
        self, inputs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor] | None = None
    ) -> dict[str, float]:
        """Fit on clips ``(T_i, input_dim)``; returns statistics (also kept in ``fit_stats``)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared
    @property
    def n_codebooks(self) -> int:
        return len(self.codebook_sizes)

    @property
    def bits_per_frame(self) -> float:
        """Bits of one frame's ids: ``sum(log2(K_c))``."""
        return float(sum(math.log2(k) for k in self.codebook_sizes))

    @torch.no_grad()
    def forward(
        self, frames: torch.Tensor, padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``ids (b, T, n_codebooks)`` of ``frames (b, T, input_dim)`` (see module docstring)."""
        if not bool(self.fitted):
            raise ConfigError(
                f"tokenizer {self.name!r} is not fitted; call fit(...) or load a fitted one "
                "(echoic tokenizer fit ...)."
            )
        if frames.ndim != 3 or frames.shape[-1] != self.input_dim:
            raise ConfigError(
                f"tokenizer {self.name!r} expects frames (b, T, {self.input_dim}); found "
                f"{tuple(frames.shape)}. Feed the frames it was fit on (source: {self.source})."
            )
        if padding_mask is not None and padding_mask.shape != frames.shape[:2]:
            raise ConfigError(
                f"padding_mask must be (b, T)={tuple(frames.shape[:2])}; found "
                f"{tuple(padding_mask.shape)}."
            )
        return self.encode(frames.float(), padding_mask)

    def check_fit_data(
        self, inputs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor] | None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        """Float32 CPU copies of the clips, checked against the declared sizes."""
        if not inputs:
            raise ConfigError(f"tokenizer {self.name!r}: fit needs at least one clip of frames.")
        xs = [torch.as_tensor(x, dtype=torch.float32).cpu() for x in inputs]
        for x in xs:
            if x.ndim != 2 or x.shape[1] != self.input_dim:
                raise ConfigError(
                    f"tokenizer {self.name!r}: fit expects clips (T, {self.input_dim}); found "
                    f"{tuple(x.shape)}."
                )
        if targets is None:
            return xs, None
        if not self.uses_targets:
            raise ConfigError(
                f"tokenizer {self.name!r} quantises its inputs and takes no targets; pass the "
                "teacher's frames as inputs (or use beats_acoustic to predict a teacher)."
            )
        ys = [torch.as_tensor(y, dtype=torch.float32).cpu() for y in targets]
        if len(ys) != len(xs):
            raise ConfigError(f"fit got {len(xs)} input clips but {len(ys)} target clips.")
        for x, y in zip(xs, ys, strict=True):
            if y.ndim != 2 or y.shape != (x.shape[0], self.target_dim):
                raise ConfigError(
                    f"tokenizer {self.name!r}: each target clip must be (T, {self.target_dim}) "
                    f"with the T of its input; found input {tuple(x.shape)}, target "
                    f"{tuple(y.shape)}."
                )
        return xs, ys

    def finish_fit(self, stats: dict[str, float]) -> dict[str, float]:
        """Mark the tokenizer fitted and keep ``stats``; returns them."""
        self.fitted.fill_(True)
        self.fit_stats = {k: float(v) for k, v in stats.items()}
        return self.fit_stats

    @property
    def identity(self) -> str:
        """Stable key of (name, config, sizes, weights): changes whenever the ids would."""
        digest = hashlib.sha256()
        for key, tensor in sorted(self.state_dict().items()):
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        meta = {"name": self.name, "config": to_dict(self.config), "dims": self.dims()}
        digest.update(json.dumps(meta, sort_keys=True).encode())
        return f"{self.name}-{digest.hexdigest()[:16]}"

    def dims(self) -> dict[str, int]:
        return {"input_dim": self.input_dim, "target_dim": self.target_dim}

    def sidecar(self) -> dict[str, Any]:
        """The JSON written beside the weights."""
        from echoic import __version__

        return {
            "format_version": FORMAT_VERSION,
            "echoic_version": __version__,
            "tokenizer": self.name,
            "config": to_dict(self.config),
            **self.dims(),
            "codebook_sizes": list(self.codebook_sizes),
            "frame_hop_ms": self.frame_hop_ms,
            "source": self.source,
            "fit_stats": self.fit_stats,
        }

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``tokenizer.safetensors`` + ``tokenizer.json`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        _atomic(directory / WEIGHTS_FILE, lambda p: save_file(state, p, metadata={"format": "pt"}))
        text = json.dumps(self.sidecar(), indent=2, sort_keys=True) + "\n"
        _atomic(directory / SIDECAR_FILE, lambda p: Path(p).write_text(text))
        return directory

    def extra_repr(self) -> str:
        return f"input_dim={self.input_dim}, codebooks={list(self.codebook_sizes)}"


def _atomic(target: Path, write: Callable[[str], object]) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        write(str(tmp))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def register(name: str) -> Callable[[type[Tokenizer]], type[Tokenizer]]:
    """Class decorator: register a :class:`Tokenizer` subclass under ``name``."""

    def add(cls: type[Tokenizer]) -> type[Tokenizer]:
        config_class = getattr(cls, "config_class", None)
        if not dataclasses.is_dataclass(config_class):
            raise TypeError(f"tokenizer {name!r} needs a dataclass config_class; got {cls!r}.")
        if "seed" not in {f.name for f in dataclasses.fields(config_class)}:
            raise TypeError(f"tokenizer {name!r}: its config needs a 'seed' field.")
        cls.name = name
        TOKENIZERS.register(name, cls)
        return cls

    return add


def build_tokenizer(
    name: str,
    input_dim: int,
    config: dict[str, Any] | Any | None = None,
    target_dim: int | None = None,
) -> Tokenizer:
    """An unfitted tokenizer ``name`` for frames of ``input_dim`` values (``target_dim``: the
    teacher's width, for tokenizers that predict one). ``config``: a dict (unknown keys raise
    :class:`ConfigError` naming the nearest), a config dataclass, or None for defaults.
    Parameters are drawn from ``config.seed`` (the global RNG is left untouched)."""
    cls = TOKENIZERS.get(name)
    resolved: Any = config
    if config is None or isinstance(config, dict):
        resolved = from_dict(cls.config_class, config, where=f"tokenizer {name!r}")
    elif not isinstance(config, cls.config_class):
        raise ConfigError(
            f"tokenizer {name!r} expects a dict or a {cls.config_class.__name__}; found "
            f"{type(config).__name__}."
        )
    if target_dim is not None and not cls.uses_targets and target_dim != input_dim:
        raise ConfigError(
            f"tokenizer {name!r} quantises its inputs: target_dim ({target_dim}) must be left "
            f"out or equal input_dim ({input_dim})."
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(resolved.seed))
        return cls(int(input_dim), resolved, target_dim)


def load_tokenizer(directory: str | os.PathLike[str]) -> Tokenizer:
    """The fitted tokenizer saved in ``directory`` by :meth:`Tokenizer.save` (safetensors only)."""
    directory = Path(directory)
    sidecar_path = directory / SIDECAR_FILE
    weights = directory / WEIGHTS_FILE
    if not sidecar_path.is_file() or not weights.is_file():
        raise CheckpointError(
            f"{directory}: expected {SIDECAR_FILE} + {WEIGHTS_FILE} (a tokenizer directory); "
            "fit one with: echoic tokenizer fit --tokenizer NAME --model MODEL AUDIO... --out DIR"
        )
    meta = json.loads(sidecar_path.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{sidecar_path}: format_version {meta.get('format_version')!r}; this echoic reads "
            f"{FORMAT_VERSION}. Refit the tokenizer or upgrade echoic."
        )
    tokenizer = build_tokenizer(
        meta["tokenizer"], meta["input_dim"], meta["config"], meta.get("target_dim")
    )
    state = load_file(str(weights))
    expected = tokenizer.state_dict()
    if set(state) != set(expected):
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        raise CheckpointError(
            f"{weights}: tensors do not match tokenizer {meta['tokenizer']!r} (missing "
            f"{missing[:5]}, unexpected {extra[:5]}); the files come from another tokenizer or "
            "echoic version."
        )
    tokenizer.load_state_dict(state, strict=True)
    tokenizer.source = dict(meta.get("source") or {})
    tokenizer.frame_hop_ms = meta.get("frame_hop_ms")
    tokenizer.fit_stats = dict(meta.get("fit_stats") or {})
    return tokenizer
