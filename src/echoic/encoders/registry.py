"""Registry of encoder sizes: name → zero-argument factory returning an encoder config.

A config class declares the module it builds through a ``build() -> nn.Module`` method and what
that module is through ``spec() -> EncoderSpec`` (the Encoder protocol, without building it), so
``build_encoder`` and the model cards work for any encoder family dropped into
``echoic.encoders``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

from echoic.config import from_dict, to_dict
from echoic.encoders.base import Encoder, EncoderSpec
from echoic.registry import Registry

__all__ = ["ENCODERS", "EncoderConfig", "build_encoder", "encoder_config"]


class EncoderConfig(Protocol):
    """What a registered size factory must return: a dataclass that can build its module and
    declare its :class:`~echoic.encoders.base.EncoderSpec` without building it."""

    def build(self) -> Encoder: ...

    def spec(self) -> EncoderSpec: ...


ENCODERS: Registry[Callable[[], EncoderConfig]] = Registry(
    "encoder", discover_package="echoic.encoders"
)


def encoder_config(name: str, **overrides: Any) -> EncoderConfig:
    """The config of registered size ``name`` with ``overrides`` applied.

    Overrides are checked by :func:`echoic.config.from_dict`: an unknown key raises ``ConfigError``
    naming the nearest valid key; lists become tuples (e.g. ``patch=[16, 8]``).
    """
    base = ENCODERS.get(name)()
    if not dataclasses.is_dataclass(base):
        raise TypeError(f"encoder factory {name!r} must return a dataclass config; got {base!r}.")
    merged = {**to_dict(base), **overrides}
    return from_dict(type(base), merged, where=f"encoder {name!r}")


def build_encoder(name: str, **overrides: Any) -> Encoder:
    """Build the encoder registered as ``name`` (e.g. ``"vit_base"``), with config ``overrides``.

    >>> enc = build_encoder("vit_test", patch=(16, 8))
    """
    return encoder_config(name, **overrides).build()
