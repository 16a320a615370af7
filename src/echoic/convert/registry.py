"""The converter registry, format auto-detection, and the converted-model cache of ``echoic.load``.

Every module of ``echoic.convert`` that defines a :class:`~echoic.convert.base.Converter` registers
it with :func:`register`; dropping ``convert/<source>.py`` is enough (the package is discovered on
first use). ``echoic.load(path)`` reaches :func:`converted_dir` through the resolver hook of
:mod:`echoic.cards` (registered below), so a public checkpoint loads like a model directory: it is
converted once into ``<cache>/converted/<sha256>-<format>-v<version>/`` and read from there after.
The cache root is ``$ECHOIC_CACHE``, else ``$XDG_CACHE_HOME/echoic``, else ``~/.cache/echoic``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TypeVar

from echoic.cards import RESOLVERS
from echoic.checkpoint import CONFIG_FILE, WEIGHTS_FILE
from echoic.convert.base import ConversionError, Converter, sha256_files
from echoic.hub import echoic_cache_dir, hub_snapshot, is_hub_name
from echoic.registry import Registry, unknown_name_message

__all__ = [
    "AUTO",
    "CONVERTERS",
    "cache_root",
    "convert",
    "converted_dir",
    "detect",
    "find_converter",
    "register",
]

AUTO = "auto"
CONVERTERS: Registry[Converter] = Registry("checkpoint format", discover_package="echoic.convert")
"""FORMAT name → converter instance."""

C = TypeVar("C", bound=type[Converter])


def register(cls: C) -> C:
    """Class decorator: register one instance of a converter under its ``name``."""
    CONVERTERS.register(cls.name, cls())
    return cls


def detect(path: str | os.PathLike[str]) -> Converter | None:
    """The converter whose format ``path`` is in, or None (the first that detects it, by name)."""
    path = Path(path)
    return next((c for _, c in CONVERTERS.items() if c.detect(path)), None)


def find_converter(path: str | os.PathLike[str], fmt: str = AUTO) -> Converter:
    """The converter for ``path``: the named format (which must read it) or the detected one."""
    path = Path(path)
    if not path.exists():
        raise ConversionError(f"{path}: no such file or folder.")
    if fmt != AUTO:
        if fmt not in CONVERTERS:
            raise ConversionError(
                unknown_name_message("checkpoint format", fmt, CONVERTERS.names())
            )
        converter = CONVERTERS.get(fmt)
        if not converter.detect(path):
            raise ConversionError(
                f"{path}: not a {fmt} checkpoint ({converter.description}); try format 'auto'."
            )
        return converter
    found = detect(path)
    if found is None:
        formats = "; ".join(f"{name}: {c.description}" for name, c in CONVERTERS.items())
        raise ConversionError(
            f"{path}: no converter recognises this checkpoint. Formats read: {formats}."
        )
    return found


def convert(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    fmt: str = AUTO,
    trust_pickle: bool = False,
) -> Path:
    """Convert the checkpoint at ``path`` (or the hub repository ``hf:ORG/NAME``, fetched first:
    :func:`echoic.hub.hub_snapshot`) into the echoic model directory ``out_dir``."""
    if is_hub_name(path):
        path = hub_snapshot(str(path))
    converter = find_converter(path, fmt)
    return converter.convert(Path(path), Path(out_dir), trust_pickle=trust_pickle)


def cache_root() -> Path:
    """Where converted models are cached: ``$ECHOIC_CACHE/converted`` (default
    ``$XDG_CACHE_HOME/echoic/converted``, ``~/.cache/echoic/converted``)."""
    return echoic_cache_dir() / "converted"


def converted_dir(path: Path) -> Path | None:
    """The cached converted model directory of ``path`` (converting it first when needed), or None
    when no converter reads ``path``. The hook :func:`echoic.cards.find_card` calls."""
    converter = detect(path)
    if converter is None:
        return None
    digest = sha256_files(converter.source_files(path))
    target = cache_root() / f"{digest}-{converter.name}-v{converter.version}"
    if (target / CONFIG_FILE).is_file() and (target / WEIGHTS_FILE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        converter.convert(path, scratch)
        try:
            os.replace(scratch, target)  # atomic; another process may have won the race
        except OSError:
            if not (target / CONFIG_FILE).is_file():
                raise
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return target


RESOLVERS.register("convert", converted_dir)
