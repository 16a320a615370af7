"""``rows_matmul``: the same product and gradients as ``x @ w`` under autograd, in the orientation
that is fast for many rows and few outputs."""

from __future__ import annotations

import pytest
import torch

from echoic.evaluate.skinny import SKINNY_MAX_OUTPUTS, rows_matmul


@pytest.mark.parametrize("outputs", [1, 10, SKINNY_MAX_OUTPUTS, SKINNY_MAX_OUTPUTS + 1])
def test_product_and_gradients_match_autograd_of_the_plain_product(outputs: int) -> None:
    gen = torch.Generator().manual_seed(outputs)
    x = torch.randn(300, 24, generator=gen, dtype=torch.float64)
    w = torch.randn(24, outputs, generator=gen, dtype=torch.float64)
    upstream = torch.randn(300, outputs, generator=gen, dtype=torch.float64)
    grads = []
    for product in (rows_matmul, torch.matmul):
        xa, wa = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
        out = product(xa, wa)
        (out * upstream).sum().backward()
        grads.append((out.detach(), xa.grad, wa.grad))
    (out, gx, gw), (want, want_gx, want_gw) = grads
    torch.testing.assert_close(out, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gx, want_gx, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gw, want_gw, rtol=1e-12, atol=1e-12)
    assert gw.is_contiguous()  # L-BFGS flattens gradients with .view(-1)


def test_gradcheck_in_float64() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(rows_matmul, (x, w))


def test_only_the_weight_gradient_when_rows_are_constant() -> None:
    x = torch.randn(50, 8)
    w = torch.randn(8, 4, requires_grad=True)
    rows_matmul(x, w).sum().backward()
    torch.testing.assert_close(w.grad, x.sum(0)[:, None].expand(8, 4), rtol=1e-5, atol=1e-5)
    assert x.grad is None


def test_float32_agrees_with_the_plain_product_to_rounding() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(5000, 512, generator=gen)
    w = torch.randn(512, 10, generator=gen)
    torch.testing.assert_close(rows_matmul(x, w), x @ w, rtol=1e-4, atol=1e-4)


def test_shapes_that_do_not_multiply_are_refused() -> None:
    with pytest.raises(ValueError, match=r"expects x \(N, D\) and weight \(D, C\); found"):
        rows_matmul(torch.zeros(3, 4), torch.zeros(5, 2))
