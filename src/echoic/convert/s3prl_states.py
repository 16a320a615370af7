"""What the s3prl checkpoint converters share: reading s3prl's pickled ``states-*.ckpt`` safely,
and the dict / config checks.

s3prl's pretraining runner saves ``torch.save({"Optimizer": optimizer.state_dict(), "Step": …,
"Args": argparse.Namespace, "Config": {...}, <the upstream's own entries>})``. The optimiser's
``param_groups`` of s3prl's ``BertAdam`` / ``AdamW`` / ``Lamb`` hold a learning-rate schedule
*object*, pickled by class name: ``s3prl.optimizers.WarmupLinearSchedule`` — or
``optimizers.WarmupLinearSchedule`` in older checkpoints, written before that module moved into the
s3prl package (s3prl's loader aliases ``sys.modules["optimizers"]`` for them). echoic never needs
the schedule: those class names, and only those, are rebuilt as inert stubs
(:class:`~echoic.convert.safe_pickle.PickledStub`); ``argparse.Namespace`` is on the general
allowlist. Anything else a file names is refused (``--trust-pickle`` is the opt-in).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from echoic.convert.base import ConversionError
from echoic.convert.safe_pickle import load_pickle

__all__ = ["S3PRL_STUBS", "read_states", "section"]

_SCHEDULES = (
    "ConstantLR",
    "WarmupCosineSchedule",
    "WarmupCosineWithHardRestartsSchedule",
    "WarmupCosineWithWarmupRestartsSchedule",
    "WarmupConstantSchedule",
    "WarmupLinearSchedule",
)
S3PRL_STUBS: tuple[str, ...] = tuple(
    f"{module}.{name}" for module in ("optimizers", "s3prl.optimizers") for name in _SCHEDULES
)
"""The learning-rate schedule classes of ``s3prl/optimizers.py``, under their old and new module
names: rebuilt as inert stubs, never imported."""


def read_states(file: Path, trust_pickle: bool) -> dict[str, Any]:
    """The top-level dict of an s3prl checkpoint, read safely (schedules stubbed)."""
    states = load_pickle(file, trust_pickle=trust_pickle, stubs=S3PRL_STUBS)
    if not isinstance(states, Mapping):
        raise ConversionError(f"{file}: expected a dict of states; found {type(states).__name__}.")
    return dict(states)


def section(value: Any, where: str) -> dict[str, Any]:
    """``value`` checked to be a config mapping."""
    if not isinstance(value, Mapping):
        raise ConversionError(f"{where}: expected a config mapping; found {type(value).__name__}.")
    return dict(value)
