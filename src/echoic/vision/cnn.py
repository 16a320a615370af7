"""``sheet_cnn``: a small CNN for engraved score snippets (``sheet_cnn_test``, ``sheet_cnn_tiny``).

Each stage is Conv 3×3 (stride 2, no bias) → BatchNorm → ReLU, halving both sides; after the last
stage the map is averaged over space, giving ``channels[-1]`` numbers per image. Both sizes read
the ``sheet_snippets`` canvas, 224 × 384 pixels. ``sheet_cnn_tiny``: six stages, 16-32-64-96-128-128
channels, 0.34 M weights, a 4 × 6 map after the last stage (a cell sees about one staff and one
beat), about 0.17 GFLOP per image (one CPU thread: 0.35 s for forward + backward of 32 images).
``sheet_cnn_test``: three stages of 4-8-8 channels (940 weights), for tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from echoic.errors import ConfigError
from echoic.vision.base import IMAGE_ENCODERS, ImageEncoder

__all__ = ["SheetCNN", "SheetCNNConfig"]


@dataclass
class SheetCNNConfig:
    """Size of a :class:`SheetCNN`: input ``height`` × ``width`` pixels, ``channels`` per stage."""

    channels: tuple[int, ...] = (16, 32, 64, 96, 128, 128)
    height: int = 224
    width: int = 384

    def __post_init__(self) -> None:
        if not self.channels or min(self.channels) < 1:
            raise ConfigError(
                f"sheet_cnn needs at least one stage of >= 1 channels; found {list(self.channels)}."
            )
        side = 2 ** len(self.channels)
        if self.height < side or self.width < side:
            raise ConfigError(
                f"sheet_cnn with {len(self.channels)} stride-2 stages needs images of at least "
                f"{side} × {side} pixels; found {self.height} × {self.width}. Use fewer channels "
                "entries or larger images."
            )

    @property
    def dim(self) -> int:
        return int(self.channels[-1])

    def build(self) -> SheetCNN:
        return SheetCNN(self)


class SheetCNN(ImageEncoder):
    """Stride-2 conv stages + global average pooling (module docstring)."""

    family = "sheet_cnn"

    def __init__(self, config: SheetCNNConfig) -> None:
        super().__init__(config)
        layers: list[nn.Module] = []
        before = 1
        for after in config.channels:
            layers += [
                nn.Conv2d(before, after, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(after),
                nn.ReLU(inplace=True),
            ]
            before = after
        self.stages = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 1, height, width)`` ink → ``(B, dim)``."""
        self.check_input(images)
        return self.stages(images).mean(dim=(2, 3))


IMAGE_ENCODERS.register("sheet_cnn_test", lambda: SheetCNNConfig(channels=(4, 8, 8)))
IMAGE_ENCODERS.register("sheet_cnn_tiny", lambda: SheetCNNConfig())
