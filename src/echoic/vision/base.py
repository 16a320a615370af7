"""The image-tower contract, its registry, and how page images become tower input.

An image tower maps a batch of grayscale images to one vector each::

    tower = build_image_encoder("sheet_cnn_tiny")            # random weights
    x = image_batch([png_pixels_1, png_pixels_2], tower.height, tower.width)   # (2, 1, H, W)
    vectors = tower(x)                                       # (2, tower.dim)

* Input: ``(B, 1, height, width)`` float32 *ink* in [0, 1] (``1 - gray / 255``: blank paper is
  0, so zero padding is blank paper). :func:`image_batch` builds it from ``(h, w)`` uint8
  grayscale arrays of the tower's height, left-aligned: narrower images are padded on the right,
  wider ones cut on the right.
* Output: ``(B, dim)``, not normalised (heads and losses normalise).
* Registry: :data:`IMAGE_ENCODERS` maps a size name to a zero-argument factory returning a
  dataclass config with ``build() -> ImageEncoder`` and a ``dim`` property (as encoder sizes do);
  :func:`build_image_encoder` applies overrides, unknown keys naming the nearest valid one.

A tower family is one module in ``echoic.vision`` (dropping a file there registers it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from echoic.config import from_dict, to_dict
from echoic.errors import ConfigError
from echoic.registry import Registry

__all__ = [
    "IMAGE_ENCODERS",
    "ImageEncoder",
    "ImageEncoderConfig",
    "build_image_encoder",
    "describe_image_encoders",
    "image_batch",
    "image_encoder_config",
]


class ImageEncoderConfig(Protocol):
    """What a registered size factory returns: a dataclass that builds its tower and declares
    its input size and output width without building it."""

    height: int
    width: int

    @property
    def dim(self) -> int: ...

    def build(self) -> ImageEncoder: ...


class ImageEncoder(nn.Module):
    """Base class of image towers: ``(B, 1, height, width)`` ink → ``(B, dim)``."""

    family: str = ""

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    @property
    def dim(self) -> int:
        return int(self.config.dim)

    @property
    def height(self) -> int:
        return int(self.config.height)

    @property
    def width(self) -> int:
        return int(self.config.width)

    def check_input(self, images: torch.Tensor) -> None:
        """Raise :class:`ConfigError` unless ``images`` is ``(B, 1, height, width)``."""
        expected = (1, self.height, self.width)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ConfigError(
                f"image tower {self.family!r} reads (B, {', '.join(map(str, expected))}); found "
                f"{tuple(images.shape)}. Build the batch with echoic.vision.image_batch(images, "
                f"{self.height}, {self.width})."
            )

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


IMAGE_ENCODERS: Registry[Callable[[], ImageEncoderConfig]] = Registry(
    "image encoder", discover_package="echoic.vision"
)
"""size name → zero-argument factory of its config; the modules of ``echoic.vision`` register."""


def image_encoder_config(name: str, **overrides: Any) -> ImageEncoderConfig:
    """The config of registered size ``name`` with ``overrides`` (unknown keys name the nearest)."""
    base = IMAGE_ENCODERS.get(name)()
    if not dataclasses.is_dataclass(base):
        raise TypeError(f"image encoder factory {name!r} must return a dataclass; got {base!r}.")
    merged = {**to_dict(base), **overrides}
    config: ImageEncoderConfig = from_dict(type(base), merged, where=f"image encoder {name!r}")
    return config


def build_image_encoder(name: str, **overrides: Any) -> ImageEncoder:
    """Build the image tower registered as ``name`` with config ``overrides``.

    >>> tower = build_image_encoder("sheet_cnn_test", height=32, width=48)
    """
    return image_encoder_config(name, **overrides).build()


def describe_image_encoders() -> list[dict[str, Any]]:
    """One row per registered size, without building: name, input size, output width."""
    rows = []
    for name in IMAGE_ENCODERS.names():
        config = IMAGE_ENCODERS.get(name)()
        rows.append(
            {"name": name, "height": config.height, "width": config.width, "dim": config.dim}
        )
    return rows


def image_batch(images: Sequence[np.ndarray], height: int, width: int) -> torch.Tensor:
    """``(B, 1, height, width)`` float32 ink of ``(h, w)`` uint8 grayscale images (module
    docstring): left-aligned, padded with blank paper or cut on the right."""
    out = np.zeros((len(images), 1, height, width), dtype=np.float32)
    for i, image in enumerate(images):
        image = np.asarray(image)
        if image.ndim != 2 or image.shape[0] != height:
            raise ConfigError(
                f"image {i} has shape {image.shape}; expected a grayscale (h, w) array with "
                f"h = {height} (the tower's height). Fix: rasterise at that height, or build the "
                f"tower with height={image.shape[0] if image.ndim == 2 else '?'}."
            )
        keep = min(width, image.shape[1])
        out[i, 0, :, :keep] = 1.0 - image[:, :keep].astype(np.float32) / 255.0
    return torch.from_numpy(out)
