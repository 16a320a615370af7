"""Stand-in ``torchvision.transforms``: names only, nothing the references call."""

from . import functional

__all__ = ["functional"]
