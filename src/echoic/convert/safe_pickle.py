"""Reading pickled checkpoints without running them.

Public checkpoints in ``.pt`` / ``.bin`` / ``.ckpt`` files are pickles, and a pickle can call any
importable function while it loads (a ``__reduce__`` that returns ``(os.system, ("…",))``). echoic
reads them with ``torch.load(weights_only=True)``, PyTorch's restricted unpickler, which rebuilds
tensors and plain containers and refuses every other global. The formats echoic converts also
pickle a few harmless classes (fairseq's ``argparse.Namespace`` / OmegaConf configs, numpy scalars
in training state); those — and only those — are allowed, by exact name, in
:data:`ALLOWED_GLOBALS`. Anything else is refused with one line naming the global and the opt-in:
``echoic convert … --trust-pickle`` (``trust_pickle=True`` in Python), which loads the file with
plain ``torch.load(weights_only=False)`` — only for files from a source you trust.
"""

from __future__ import annotations

import importlib
import os
import pickle
import re
from typing import Any

import torch

from echoic.errors import CheckpointError

__all__ = ["ALLOWED_GLOBALS", "PickledStub", "UnsafePickleError", "load_pickle", "unsafe_globals"]

ALLOWED_GLOBALS: tuple[str, ...] = (
    # fairseq / unilm / s3prl training arguments and configs
    "argparse.Namespace",
    "omegaconf.dictconfig.DictConfig",
    "omegaconf.listconfig.ListConfig",
    "omegaconf.base.ContainerMetadata",
    "omegaconf.base.Metadata",
    "omegaconf.nodes.AnyNode",
    "omegaconf.nodes.StringNode",
    "omegaconf.nodes.IntegerNode",
    "omegaconf.nodes.FloatNode",
    "omegaconf.nodes.BooleanNode",
    "typing.Any",
    # plain types used as constructors (PyTorch's restricted unpickler cannot fill a
    # collections.defaultdict: a converter expecting one names it in ``stubs``, STANDINS)
    "builtins.dict",
    "builtins.list",
    "builtins.tuple",
    "builtins.set",
    "builtins.frozenset",
    "builtins.int",
    "builtins.float",
    "builtins.str",
    "builtins.bool",
    "builtins.bytes",
    # numpy scalars, dtypes and arrays in training state (best scores, RNG states)
    "numpy.dtype",
    "numpy.ndarray",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.dtypes.Float64DType",
    "numpy.dtypes.Float32DType",
    "numpy.dtypes.Int64DType",
    "numpy.dtypes.Int32DType",
    "numpy.dtypes.UInt32DType",
    "numpy.dtypes.BoolDType",
)
"""Globals a checkpoint may name beyond PyTorch's own weights-only set, by ``module.qualname``."""

TRUST_HINT = (
    "if you trust this file, convert it with `echoic convert FORMAT CKPT --out DIR --trust-pickle` "
    "(Python: trust_pickle=True), which runs its pickle"
)


class UnsafePickleError(CheckpointError):
    """A pickled checkpoint names a global outside the allowlist; nothing of it was executed."""

    def __init__(self, path: str | os.PathLike[str], name: str, others: int = 0) -> None:
        self.path = str(path)
        self.name = name
        more = f" (and {others} more)" if others else ""
        super().__init__(
            f"{self.path}: refused to unpickle the global {name!r}{more}: pickled checkpoints are "
            f"read with torch.load(weights_only=True) plus echoic's allowlist, and it is not on "
            f"it; {TRUST_HINT}."
        )


def unsafe_globals(path: str | os.PathLike[str]) -> list[str] | None:
    """Globals named in a zip-format torch checkpoint beyond PyTorch's weights-only set, read from
    the pickle's opcodes without running them; None for files that are not zip checkpoints."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(os.fspath(path)))
    except (RuntimeError, ValueError, pickle.UnpicklingError, OSError):
        return None


def _resolve(name: str) -> Any | None:
    module, _, attribute = name.rpartition(".")
    try:
        value: Any = importlib.import_module(module)
    except ImportError:
        return None
    for part in attribute.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


def _allowed_objects(needed: list[str] | None, path: str | os.PathLike[str]) -> list[Any]:
    """Every importable allowlisted global, to hand to the unpickler (a numpy ``dtype`` is rebuilt
    through its class, e.g. ``Float64DType``, which the file does not name); an allowlisted global
    the file names whose package is missing here is an error."""
    for name in needed or ():
        if _resolve(name) is None:
            package = name.split(".")[0]
            raise CheckpointError(
                f"{path}: the checkpoint pickles {name!r} (allowed), but {package!r} cannot be "
                f"imported here; install it (pip install {package}) to read this file."
            )
    found = (_resolve(name) for name in ALLOWED_GLOBALS)
    return [value for value in found if value is not None]


class PickledStub:
    """An inert stand-in for a class a checkpoint pickles but a converter never needs (s3prl's
    learning-rate schedules in an optimiser's state): rebuilt by name without importing the named
    module or running any of its code; what the pickle gives it is kept as plain values."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state: Any) -> None:
        self.state = state


def plain_dict(*args: Any) -> dict[Any, Any]:
    """Data-only stand-in for ``collections.defaultdict(factory)``: an empty plain dict, which the
    pickle's items then fill (PyTorch's restricted unpickler fills only exact ``dict`` types); the
    factory is dropped. fairseq checkpoints hold defaultdicts in their training state."""
    return {}


STANDINS: dict[str, Any] = {"collections.defaultdict": plain_dict}
"""Stand-ins for the ``stubs`` names that must rebuild as containers, not :class:`PickledStub`."""


def load_pickle(
    path: str | os.PathLike[str], trust_pickle: bool = False, stubs: tuple[str, ...] = ()
) -> Any:
    """The object in a pickled torch checkpoint, tensors on the CPU.

    Without ``trust_pickle`` only tensors, plain containers and :data:`ALLOWED_GLOBALS` are rebuilt,
    plus the classes named in ``stubs`` (``module.qualname``, a converter's own short list), which
    become inert :class:`PickledStub` objects (``collections.defaultdict``: a plain dict,
    :data:`STANDINS`); a file naming anything else raises
    :class:`UnsafePickleError` before any of it runs.
    """
    if trust_pickle:
        return torch.load(path, map_location="cpu", weights_only=False)
    found = unsafe_globals(path)
    if found is not None:
        refused = [name for name in found if name not in ALLOWED_GLOBALS and name not in stubs]
        if refused:
            raise UnsafePickleError(path, refused[0], len(refused) - 1)
        found = [name for name in found if name not in stubs]
    allowed: list[Any] = _allowed_objects(found, path)
    allowed += [(STANDINS.get(name, PickledStub), name) for name in stubs]
    with torch.serialization.safe_globals(allowed):
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            text = str(err)
            match = re.search(r"GLOBAL (\S+) was not an allowed global", text) or re.search(
                r"but got <class '([^']+)'>", text
            )
            if match:
                raise UnsafePickleError(path, match.group(1)) from None
            reason = text.partition("WeightsUnpickler error:")[2].strip().split("\n")[0]
            raise CheckpointError(
                f"{path}: not a readable torch checkpoint ({reason or type(err).__name__})"
            ) from None
