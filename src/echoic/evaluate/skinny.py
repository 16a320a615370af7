"""``rows @ weight`` for many rows and few outputs, with a backward that avoids a slow kernel.

The linear probe's logits are ``x @ w`` for ``x`` of tens of thousands of rows by 384–4,096 dims and
``w`` of a handful of labels. Autograd's backward of that product computes the weight's gradient
as ``xᵀ @ g``; on this torch's CPU build that transposed, skinny product runs 11–21× slower than
the same numbers computed as ``(gᵀ @ x)ᵀ`` (one thread: 506 vs 35 ms for 29,880 × 2,048 rows and 10
labels; 351 vs 32 ms for 120,000 × 384), and it is most of an L-BFGS iteration. The forward is
likewise computed as ``(wᵀ @ xᵀ)ᵀ`` (82 → 50 ms on the first shape). Forward + backward together,
one thread: 6–8× faster for 2–10 outputs, 1.2–1.7× for 50, even at 128, and slower beyond (0.9×
at 256, 8,000 × 4,096 rows), so wider weights (the MLP probes' 1,024-unit layers) take the plain
product. Same products, another summation order: results agree to float rounding
(tests/evaluate/test_evaluate_skinny.py).
``benchmarks/bench_linear_backward.py`` measures the probe with and without it.
"""

from __future__ import annotations

from typing import Any

import torch

SKINNY_MAX_OUTPUTS = 128
"""Widest ``weight`` (outputs) computed in the skinny orientation; wider ones use ``x @ weight``."""


class _RowsMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        return (weight.t() @ x.t()).t()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x, weight = ctx.saved_tensors
        grad_x = grad @ weight.t() if ctx.needs_input_grad[0] else None
        # contiguous: optimisers such as L-BFGS flatten gradients with .view(-1)
        grad_w = (grad.t() @ x).t().contiguous() if ctx.needs_input_grad[1] else None
        return grad_x, grad_w


def rows_matmul(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x @ weight`` ``(N, C)`` for ``x`` ``(N, D)`` and ``weight`` ``(D, C)``, differentiable in
    both, with the products oriented for many rows and few outputs (module docstring) where ``C``
    is at most :data:`SKINNY_MAX_OUTPUTS`."""
    if x.dim() != 2 or weight.dim() != 2 or x.shape[1] != weight.shape[0]:
        raise ValueError(
            f"rows_matmul expects x (N, D) and weight (D, C); found {tuple(x.shape)} and "
            f"{tuple(weight.shape)}"
        )
    if weight.shape[1] > SKINNY_MAX_OUTPUTS:
        return x @ weight
    return _RowsMatmul.apply(x, weight)
