"""Stand-in ``torchvision.transforms``: names only, plus ``Compose`` (avex's ATST ``load_model``
chains its torchaudio frontend with it: each transform applied in turn, as torchvision's does)."""

from collections.abc import Callable
from typing import Any

from . import functional

__all__ = ["Compose", "functional"]


class Compose:
    def __init__(self, transforms: list[Callable[[Any], Any]]) -> None:
        self.transforms = transforms

    def __call__(self, value: Any) -> Any:
        for transform in self.transforms:
            value = transform(value)
        return value
