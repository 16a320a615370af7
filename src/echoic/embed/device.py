"""Where embedding models run: ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"`` or ``"auto"``.

Every embedding path (the echoic :class:`~echoic.embed.embedder.Embedder`, the zoo's baselines and
peers) takes a ``device`` option, resolves it here, runs its network there and hands back CPU
float32 outputs. A device never enters an embedding identity: it changes where the arithmetic
runs, not what it computes (CUDA kernels round differently from the CPU's, within float32 noise;
``tests/embed/test_embed_device_cuda.py`` measures it where a GPU exists). float32 on a GPU means
float32: :func:`exact_fp32` turns off TF32 (which cuDNN convolutions use by default on Ampere and
later, ~1e-3 relative error) while an embedding path runs; bf16 is asked for with ``precision``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from echoic.errors import ConfigError

__all__ = ["DEVICES", "exact_fp32", "module_device", "resolve_device", "to_device"]

DEVICES = "cpu, cuda, cuda:N or auto"


def resolve_device(name: str | torch.device | None) -> torch.device:
    """The ``torch.device`` of ``name``; ``"auto"`` (or None) is a CUDA GPU when torch sees one,
    else the CPU. Raises :class:`ConfigError` for anything else and for a GPU that is not there."""
    if isinstance(name, torch.device):
        device = name
    elif name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif not isinstance(name, str):
        raise ConfigError(f"device must be one of {DEVICES}; found {name!r}")
    else:
        try:
            device = torch.device(name)
        except (RuntimeError, ValueError) as err:
            raise ConfigError(f"device must be one of {DEVICES}; found {name!r} ({err})") from None
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type != "cuda":
        raise ConfigError(
            f"device must be one of {DEVICES}; found {name!r} ({device.type} is not supported "
            "by echoic's embedding paths)"
        )
    if not torch.cuda.is_available():
        raise ConfigError(
            f"device {name!r} asked for, but torch sees no CUDA GPU here (torch "
            f"{torch.__version__}, CUDA build {torch.version.cuda}); use device 'cpu' or 'auto'"
        )
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise ConfigError(
            f"device {name!r} asked for, but torch sees {count} CUDA GPU(s) "
            f"(cuda:0 … cuda:{count - 1}); pick one of those or 'cuda'"
        )
    return device


def module_device(module: torch.nn.Module) -> torch.device:
    """Where ``module`` lives now: the device of its first parameter or buffer (CPU if none).

    Callers read it at every call rather than remembering it, so a model moved afterwards (the
    HEAR harness's ``model.to("cuda")``) is followed."""
    for parameter in module.parameters():
        return parameter.device
    for buffer in module.buffers():
        return buffer.device
    return torch.device("cpu")


def to_device(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``module`` moved to ``device`` in place (a no-op when it is there already)."""
    if module_device(module) != device:
        module.to(device)
    return module


@contextmanager
def exact_fp32() -> Iterator[None]:
    """TF32 off for cuDNN convolutions and CUDA matmuls inside the block, restored after (no-op
    on the CPU): float32 models compute in float32 on a GPU too."""
    cudnn, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = cudnn
        torch.backends.cuda.matmul.allow_tf32 = matmul
