"""Fused inference kernels for linear layers (oneDNN on CPU), with an exact fallback.

``torch.nn.functional.linear`` on CPU runs MKL's GEMM after first copying the bias into every row
of the output, and GELU / residual additions are further passes over memory. oneDNN (bundled with
PyTorch as ``torch.ops.mkldnn``, the kernels ``torch.compile`` uses on CPU) adds the bias, the GELU
or a residual inside the GEMM. On the 2-core AMD (AVX2) machine measured, its fp32 GEMMs also ran
faster than MKL's with 2 threads (about equal with 1); see ``benchmarks/bench_embed.py --ablate``.

Those ops have no autograd formula, so they are used only when nothing needs a gradient
(``torch.no_grad`` / ``torch.inference_mode``, or frozen weights), for float32 CPU tensors, outside
``torch.compile`` tracing, and while :func:`set_fused_inference` has not turned them off. Every other
case takes the plain PyTorch composite, which computes the same function.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F

__all__ = [
    "apply_linear",
    "apply_linear_add",
    "fused_inference",
    "linear",
    "linear_add",
    "set_fused_inference",
    "use_fused",
]


def _ops_available() -> bool:
    try:
        ops = torch.ops.mkldnn
        return torch.backends.mkldnn.is_available() and hasattr(ops, "_linear_pointwise")
    except (AttributeError, RuntimeError):
        return False


_AVAILABLE = _ops_available()
_enabled = os.environ.get("ECHOIC_FUSED_INFERENCE", "1") != "0"


def set_fused_inference(enabled: bool) -> bool:
    """Turn the oneDNN inference path on or off process-wide; returns the previous setting.

    Also settable before start-up with ``ECHOIC_FUSED_INFERENCE=0``.
    """
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    return previous


@contextmanager
def fused_inference(enabled: bool) -> Iterator[None]:
    """Context manager form of :func:`set_fused_inference`."""
    previous = set_fused_inference(enabled)
    try:
        yield
    finally:
        set_fused_inference(previous)


def use_fused(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> bool:
    """Whether ``x @ weight.T + bias`` may run on the fused oneDNN kernels."""
    if not (_enabled and _AVAILABLE) or x.device.type != "cpu" or x.numel() == 0:
        return False
    if x.dtype != torch.float32 or weight.dtype != torch.float32 or weight.ndim != 2:
        return False
    if torch.compiler.is_compiling():
        return False
    if torch.is_grad_enabled() and (
        x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
    ):
        return False
    return True


def linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, gelu: bool = False
) -> torch.Tensor:
    """``x @ weight.T + bias`` (then exact GELU if ``gelu``). x: ``(..., K)`` → ``(..., N)``."""
    if use_fused(x, weight, bias):
        attr, algorithm = ("gelu", "none") if gelu else ("none", "")
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, attr, [], algorithm)
    out = F.linear(x, weight, bias)
    return F.gelu(out) if gelu else out


def linear_add(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, residual: torch.Tensor
) -> torch.Tensor:
    """``residual + x @ weight.T + bias``. x: ``(..., K)``, residual: ``(..., N)`` → ``(..., N)``."""
    if use_fused(x, weight, bias) and not (torch.is_grad_enabled() and residual.requires_grad):
        shape = (*x.shape[:-1], weight.shape[0])
        if residual.dtype == torch.float32 and residual.shape == shape and residual.is_contiguous():
            return torch.ops.mkldnn._linear_pointwise.binary(x, residual, weight, bias, "add")
    return residual + F.linear(x, weight, bias)


def apply_linear(module: torch.nn.Module, x: torch.Tensor, gelu: bool = False) -> torch.Tensor:
    """A linear layer ``module`` on ``x`` (then exact GELU if ``gelu``): an ``nn.Linear`` through
    :func:`linear`; any other module computing a linear map (a dynamically quantised int8 Linear,
    see ``echoic.embed.precision``) by calling it."""
    if isinstance(module, torch.nn.Linear):
        return linear(x, module.weight, module.bias, gelu)
    out = module(x)
    return F.gelu(out) if gelu else out


def apply_linear_add(
    module: torch.nn.Module, x: torch.Tensor, residual: torch.Tensor
) -> torch.Tensor:
    """``residual + module(x)`` for a linear layer ``module`` (see :func:`apply_linear`)."""
    if isinstance(module, torch.nn.Linear):
        return linear_add(x, module.weight, module.bias, residual)
    return residual + module(x)
