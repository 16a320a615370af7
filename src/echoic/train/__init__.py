"""Pretraining on Lightning: the only package with optimisers, trainers and distributed code.

``pretrain(load_config("configs/pretrain/eat_base.yaml"))`` or ``echoic pretrain --config ...``.
Imported lazily so that ``import echoic.train.config`` does not load Lightning.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "PretrainConfig": "echoic.train.config",
    "load_config": "echoic.train.config",
    "PretrainModule": "echoic.train.module",
    "PretrainResult": "echoic.train.run",
    "pretrain": "echoic.train.run",
    "export_checkpoint": "echoic.train.export",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'echoic.train' has no attribute {name!r}")
