"""Mamba's selective scan (Gu & Dao 2023) in pure PyTorch: a chunked parallel scan.

The state-space recurrence of one Mamba direction, per channel ``d`` and state ``n``::

    h[t] = exp(delta[t, d] * A[d, n]) * h[t - 1] + delta[t, d] * B[t, n] * x[t, d]
    y[t, d] = sum_n C[t, n] * h[t, d, n] + D[d] * x[t, d]

is a first-order linear recurrence ``h[t] = a[t] * h[t-1] + b[t]`` (elementwise, ``h[-1] = 0``),
evaluated here without a Python loop over time steps. The building block is a Hillis–Steele
prefix scan over a chunk of steps: it composes the affine maps ``h -> a * h + b`` in
``log2(chunk)`` vectorised passes, with products of ``a`` only (never their logarithms or
inverses, so nothing overflows when ``delta * A`` is very negative). Two schedules use it:

- **parallel** (:func:`linear_scan`, used by the backward): chunks scanned all at once, then the
  chunk ends scanned the same way, recursively (``L / chunk`` steps), then each chunk adds its
  incoming state; no loop over chunks, ``O(L log chunk)`` work (chunks of 2, the work-efficient
  case, were fastest on CPU).
- **streamed** (the forward, :func:`_streamed`): blocks of ``chunk`` steps one after the other;
  the state carried in from the previous block enters the block's first step, then the block is
  scanned in parallel as above. A loop over ``L / chunk`` blocks, and only one block's
  ``(B, chunk, ED, N)`` states exist at a time: memory ``O(L * ED)``, and a block's data stays in
  cache (64 steps was fastest on a 2-core AVX-512 CPU, about 2× the full-length scan).

Training (:class:`SelectiveScan`) keeps only the ``(B, L, ED)`` / ``(B, L, N)`` inputs: backward
recomputes the states and runs the adjoint recurrence ``g[t] = dh[t] + a[t+1] * g[t+1]`` as the
same scan over the reversed sequence, like Mamba's fused kernel does (recompute, don't store).

On a CUDA device with ``mamba_ssm`` importable, :func:`selective_scan` may hand the whole scan to
its fused kernel (``fused=True``); that path is optional and not exercised by the test suite.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import Any

import torch

from echoic.errors import ConfigError

__all__ = ["SelectiveScan", "fused_scan_available", "linear_scan", "selective_scan"]

LOG2_E = math.log2(math.e)
MIN_LOG_DECAY = -80.0
"""``delta * A`` is clamped here before ``exp``: a decay below ``exp(-80) ≈ 2e-35`` changes no
float32 state, and ``exp`` of arguments below about -87 (subnormal results) runs ~25× slower."""
MIN_LOG2_DECAY = MIN_LOG_DECAY * LOG2_E

_FUSED: Callable[..., torch.Tensor] | None = None
_FUSED_CHECKED = False


def _fused_kernel() -> Callable[..., torch.Tensor] | None:
    """``mamba_ssm``'s ``selective_scan_fn`` when that package imports, else None (checked once)."""
    global _FUSED, _FUSED_CHECKED
    if not _FUSED_CHECKED:
        _FUSED_CHECKED = True
        try:
            module = importlib.import_module("mamba_ssm.ops.selective_scan_interface")
            _FUSED = module.selective_scan_fn
        except Exception:
            _FUSED = None
    return _FUSED


def fused_scan_available() -> bool:
    """Whether ``mamba_ssm``'s fused CUDA selective scan can be used (a GPU and the package)."""
    return torch.cuda.is_available() and _fused_kernel() is not None


def _compose_(a: torch.Tensor, h: torch.Tensor, dim: int) -> None:
    """Hillis-Steele inclusive scan along ``dim``, in place: ``h`` becomes the states from a zero
    state at the start of ``dim``, ``a`` the cumulative decays (``log2(size)`` passes)."""
    size, step = a.shape[dim], 1
    while step < size:  # compose every map with the one `step` earlier
        a_late, h_late = a.narrow(dim, step, size - step), h.narrow(dim, step, size - step)
        a_early, h_early = a.narrow(dim, 0, size - step), h.narrow(dim, 0, size - step)
        if 2 * step >= size:  # nothing read is written: no temporaries
            h_late.addcmul_(a_late, h_early)
            a_late.mul_(a_early)
        else:  # overlapping: read the old values through temporaries
            h_late.add_(a_late * h_early)
            a_late.copy_(a_late * a_early)
        step *= 2


def _scan_(a: torch.Tensor, b: torch.Tensor, chunk: int) -> torch.Tensor:
    """``h[:, t] = a[:, t] * h[:, t - 1] + b[:, t]`` along dim 1 from ``h = 0``, in place: returns
    ``b`` holding ``h``; ``a`` is overwritten. Works on strided views (the recursion's chunk ends);
    with ``chunk=2`` it allocates nothing."""
    length = b.shape[1]
    if length <= 1:
        return b
    size = min(chunk, length)
    n_chunks = length // size
    whole = n_chunks * size
    decay = a[:, :whole].unflatten(1, (n_chunks, size))
    h = b[:, :whole].unflatten(1, (n_chunks, size))
    _compose_(decay, h, 2)  # every chunk from a zero state
    if whole < length:  # a last, shorter chunk
        _compose_(a[:, whole:], b[:, whole:], 1)
    if n_chunks > 1:  # chunk ends: the scan over chunks (in place, through the views)
        _scan_(decay[:, :, -1], h[:, :, -1], chunk)
        h[:, 1:, :-1].addcmul_(decay[:, 1:, :-1], h[:, :-1, -1:])
    if whole < length:
        b[:, whole:].addcmul_(a[:, whole:], b[:, whole - 1 : whole])
    return b


def linear_scan(a: torch.Tensor, b: torch.Tensor, chunk: int = 2) -> torch.Tensor:
    """``(B, L, ...)`` states of ``h[t] = a[t] * h[t-1] + b[t]`` along dim 1, ``h[-1] = 0`` (the
    parallel scan, on copies; no autograd). ``chunk``: steps per chunk (2 was fastest on CPU)."""
    if a.shape != b.shape or a.ndim < 2:
        raise ConfigError(
            f"linear_scan needs a and b of one shape (B, L, ...); found {tuple(a.shape)} and "
            f"{tuple(b.shape)}."
        )
    if chunk < 2:
        raise ConfigError(f"scan chunk must be >= 2 steps; found {chunk}.")
    with torch.no_grad():
        return _scan_(a.clone(), b.clone(), chunk)


def _streamed(
    x: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    chunk: int,
) -> torch.Tensor:
    """``sum_n C h`` ``(B, L, ED)`` block after block: the state carried in from the previous block
    enters the block's first step, then the block's states come from the parallel scan. One
    block of ``(B, chunk, ED, N)`` buffers is reused throughout (fresh large allocations cost page
    faults on every block)."""
    batch, length, inner = x.shape
    size = min(chunk, length)
    decay = x.new_empty(batch, size, inner, A.shape[-1])
    h = torch.empty_like(decay)
    carry = x.new_zeros(batch, inner, A.shape[-1])
    y = torch.empty_like(x)
    drive = delta * x
    A2 = A * LOG2_E  # exp(delta A) = exp2(delta A log2 e): exp2 is ~4x faster on CPU
    if A2.ndim == 3:  # one A per batch item (both directions of a Mamba layer in one scan)
        A2 = A2[:, None]
    for start in range(0, length, size):
        n = min(size, length - start)
        part = slice(start, start + n)
        decay_n, h_n = decay[:, :n], h[:, :n]
        torch.mul(delta[:, part, :, None], A2, out=decay_n).clamp_(min=MIN_LOG2_DECAY).exp2_()
        torch.mul(drive[:, part, :, None], B[:, part, None, :], out=h_n)
        if start:
            h_n[:, 0].addcmul_(decay_n[:, 0], carry)
        _scan_(decay_n, h_n, 2)
        # sum_n C h, one batch item at a time: torch's einsum is ~4x faster per element on a
        # single item than on several (it falls back to a batched matmul over (batch, step))
        for i in range(batch):
            y[i : i + 1, part] = torch.einsum("bldn,bln->bld", h_n[i : i + 1], C[i : i + 1, part])
        carry.copy_(h_n[:, -1])
    return y


class SelectiveScan(torch.autograd.Function):
    """``y = sum_n C h`` of the selective SSM (without ``D x``) with a memory-light backward.

    Forward streams chunks (:func:`_streamed`) and keeps only its ``(B, L, ED)`` / ``(B, L, N)``
    inputs; backward recomputes the states with the parallel scan, runs the adjoint recurrence
    ``g[t] = dh[t] + a[t + 1] g[t + 1]`` as the same scan over the reversed sequence, and forms
    the gradients of ``a = exp(delta A)`` and ``b = delta B x`` in closed form. So a stack of
    blocks stores no ``(B, L, ED, N)`` tensor between forward and backward (as Mamba's kernel).
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        delta: torch.Tensor,
        A: torch.Tensor,
        B: torch.Tensor,
        C: torch.Tensor,
        chunk: int,
    ) -> torch.Tensor:
        ctx.save_for_backward(x, delta, A, B, C)
        return _streamed(x, delta, A, B, C, chunk)

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, delta, A, B, C = ctx.saved_tensors
        decay = (delta[..., None] * A).clamp_(min=MIN_LOG_DECAY).exp_()  # (B, L, ED, N)
        h = _scan_(decay.clone(), (delta * x)[..., None] * B[:, :, None, :], 2)
        d_c = torch.einsum("bldn,bld->bln", h, dy)
        shifted = torch.empty_like(decay)  # a[t + 1], reversed in time
        shifted[:, 0] = 0.0
        shifted[:, 1:] = decay[:, 1:].flip(1)
        g = _scan_(shifted, (dy[..., None] * C[:, :, None, :]).flip(1), 2).flip(1)  # d loss / d b
        del shifted
        g_b = torch.einsum("bldn,bln->bld", g, B)
        d_b = torch.einsum("bldn,bld->bln", g, delta * x)
        # d loss / d a[t] = g[t] h[t - 1]; times da / d(delta A) = a
        g.narrow(1, 1, g.shape[1] - 1).mul_(h[:, :-1]).mul_(decay[:, 1:])
        g[:, 0] = 0.0
        d_delta = torch.einsum("bldn,dn->bld", g, A) + g_b * x
        d_a = torch.einsum("bldn,bld->dn", g, delta)
        return g_b * delta, d_delta, d_a, d_b, d_c, None


def selective_scan(
    x: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    chunk: int = 64,
    fused: bool = False,
) -> torch.Tensor:
    """Mamba's selective SSM (module docstring). x, delta: ``(B, L, ED)`` (delta after softplus);
    A: ``(ED, N)`` (negative); B, C: ``(B, L, N)``; D: ``(ED,)``. Returns ``y (B, L, ED)``.
    Without autograd A may also be ``(B, ED, N)`` and D ``(B, 1, ED)``: one per batch item (the
    two directions of a bidirectional layer scanned as one batch).

    chunk: steps per streamed chunk (64 was fastest on CPU). ``fused=True`` uses ``mamba_ssm``'s
    CUDA kernel when the tensors are on a GPU and it imports.
    """
    if chunk < 2:
        raise ConfigError(f"scan chunk must be >= 2 steps; found {chunk}.")
    kernel = _fused_kernel() if fused and x.is_cuda else None
    if kernel is not None:
        y = kernel(
            x.transpose(1, 2).contiguous(),
            delta.transpose(1, 2).contiguous(),
            A.contiguous(),
            B.transpose(1, 2).contiguous(),
            C.transpose(1, 2).contiguous(),
            D.contiguous(),
        )
        return y.transpose(1, 2)
    inputs = (x, delta, A, B, C)
    if torch.is_grad_enabled() and any(t.requires_grad for t in inputs):
        if A.ndim != 2:
            raise ConfigError(
                f"selective_scan with autograd needs one A (ED, N); found {tuple(A.shape)}. "
                "Scan the directions separately when training."
            )
        y = SelectiveScan.apply(x, delta, A, B, C, chunk)
    else:
        y = _streamed(x, delta, A, B, C, chunk)
    return y + D * x
