"""The pure-torch Mamba blocks against PyPI ``mambapy`` 1.2.0, and the chunked scan against the
recurrence it computes, step by step."""

from __future__ import annotations

import pytest
import torch
from mambapy.mamba import Mamba
from mambapy.mamba import MambaConfig as UniConfig
from mambapy.vim import MambaConfig, VMamba

from echoic.errors import ConfigError
from echoic.layers.mamba import MambaBlock, MambaMixer
from echoic.layers.selective_scan import linear_scan, selective_scan


def recurrence(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``h[t] = a[t] * h[t-1] + b[t]``, one time step at a time."""
    h, states = torch.zeros_like(b[:, 0]), []
    for t in range(a.shape[1]):
        h = a[:, t] * h + b[:, t]
        states.append(h)
    return torch.stack(states, dim=1)


@pytest.mark.parametrize("length", [1, 2, 5, 16, 17, 63, 200])
@pytest.mark.parametrize("chunk", [2, 3, 8, 64])
def test_chunked_scan_equals_the_recurrence(length: int, chunk: int) -> None:
    g = torch.Generator().manual_seed(length * 100 + chunk)
    a = torch.rand(2, length, 3, 4, generator=g, dtype=torch.float64)
    b = torch.randn(2, length, 3, 4, generator=g, dtype=torch.float64)
    torch.testing.assert_close(linear_scan(a, b, chunk), recurrence(a, b), rtol=1e-12, atol=1e-12)


def test_chunked_scan_survives_strong_decay() -> None:
    """Products of decays only: no overflow where log-space cumulative sums would blow up."""
    a = torch.full((1, 300, 2), 1e-30)
    b = torch.ones(1, 300, 2)
    h = linear_scan(a, b, 32)
    assert torch.isfinite(h).all()
    torch.testing.assert_close(h, recurrence(a, b))


def test_chunk_of_one_is_refused() -> None:
    with pytest.raises(ConfigError, match=">= 2"):
        linear_scan(torch.ones(1, 4, 1), torch.ones(1, 4, 1), 1)


def randomised(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every parameter moved off its initial value (random weights, not the init's structure)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return module


def echoic_stack(dim: int, depth: int, d_state: int, chunk: int) -> torch.nn.ModuleList:
    return torch.nn.ModuleList(
        MambaBlock(MambaMixer(dim, d_state=d_state, chunk=chunk), dim) for _ in range(depth)
    )


@pytest.mark.parametrize("length", [1, 7, 64, 301])
def test_bidirectional_blocks_match_mambapy_vim(length: int) -> None:
    torch.manual_seed(0)
    reference = randomised(VMamba(MambaConfig(d_model=48, n_layers=2, d_state=8)), length)
    ours = echoic_stack(48, 2, d_state=8, chunk=8)
    ours.load_state_dict(reference.layers.state_dict())  # same names, nothing missing or extra
    x = torch.randn(3, length, 48)
    y = x
    for block in ours:
        y = block(y)
    expected = reference(x)
    assert (y - expected).abs().max() <= 1e-5
    assert expected.abs().max() > 0.5  # a non-trivial output
    with torch.no_grad():  # inference scans both directions as one batch (MambaMixer._paired)
        y_inference = x
        for block in ours:
            y_inference = block(y_inference)
        assert (y_inference - expected).abs().max() <= 1e-5
    # and the gradients of every parameter (our backward is hand-written)
    weights = torch.randn_like(expected)
    (y * weights).sum().backward()
    (expected * weights).sum().backward()
    theirs = dict(reference.layers.named_parameters())
    for name, p in ours.named_parameters():
        assert p.grad is not None
        torch.testing.assert_close(p.grad, theirs[name].grad, rtol=1e-4, atol=1e-4, msg=name)


def test_unidirectional_block_matches_mambapy_mamba() -> None:
    torch.manual_seed(1)
    reference = randomised(Mamba(UniConfig(d_model=32, n_layers=2, dt_rank=5)), 1)
    ours = torch.nn.ModuleList(
        MambaBlock(MambaMixer(32, dt_rank=5, bidirectional=False, chunk=16), 32) for _ in range(2)
    )
    ours.load_state_dict(reference.layers.state_dict())
    x = torch.randn(2, 130, 32)
    y = x
    for block in ours:
        y = block(y)
    assert (y - reference(x)).abs().max() <= 1e-5


def test_end_padding_never_reaches_valid_tokens_in_either_direction() -> None:
    torch.manual_seed(2)
    mixer = randomised(MambaMixer(16, d_state=4, chunk=4), 3)
    x = torch.randn(1, 10, 16)
    alone = mixer(x)
    padded = torch.cat([x, torch.randn(1, 6, 16) * 5], dim=1)
    pad = torch.zeros(1, 16, dtype=torch.bool)
    pad[:, 10:] = True
    torch.testing.assert_close(mixer(padded, pad)[:, :10], alone, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # the paired inference path, on a batch of two different lengths
        both = mixer(
            torch.cat([padded, torch.cat([x, x[:, :6]], dim=1)]), torch.cat([pad, ~pad & False])
        )
        torch.testing.assert_close(both[:1, :10], alone, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(
            both[1:], mixer(torch.cat([x, x[:, :6]], dim=1)), rtol=1e-5, atol=1e-5
        )
    # without the mask the backward scan does read the padding (the test can fail)
    assert (mixer(padded)[:, :10] - alone).abs().max() > 1e-3


def naive_selective_scan(x, delta, A, B, C, D):
    """The SSM by its definition, one step at a time (plain autograd)."""
    h, ys = torch.zeros(x.shape[0], x.shape[2], A.shape[1], dtype=x.dtype), []
    for t in range(x.shape[1]):
        h = (
            torch.exp(delta[:, t, :, None] * A) * h
            + (delta[:, t] * x[:, t])[..., None] * B[:, t, None, :]
        )
        ys.append((h * C[:, t, None, :]).sum(-1))
    return torch.stack(ys, dim=1) + D * x


def ssm_inputs(length: int, dtype: torch.dtype, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ed, n = 6, 4
    return [
        torch.randn(2, length, ed, generator=g, dtype=dtype),
        torch.rand(2, length, ed, generator=g, dtype=dtype) * 0.5 + 0.01,
        -torch.rand(ed, n, generator=g, dtype=dtype) * 3 - 0.1,
        torch.randn(2, length, n, generator=g, dtype=dtype),
        torch.randn(2, length, n, generator=g, dtype=dtype),
        torch.randn(ed, generator=g, dtype=dtype),
    ]


@pytest.mark.parametrize("length", [1, 5, 16, 41])
@pytest.mark.parametrize("chunk", [2, 16])
def test_selective_scan_forward_equals_the_definition(length: int, chunk: int) -> None:
    inputs = ssm_inputs(length, torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(
            selective_scan(*inputs, chunk=chunk), naive_selective_scan(*inputs)
        )


def test_selective_scan_gradients_equal_the_definitions() -> None:
    inputs = [t.requires_grad_() for t in ssm_inputs(23, torch.float64, seed=1)]
    ours = torch.autograd.grad(selective_scan(*inputs, chunk=4).pow(2).sum(), inputs)
    expected = torch.autograd.grad(naive_selective_scan(*inputs).pow(2).sum(), inputs)
    for name, got, want in zip("x delta A B C D".split(), ours, expected, strict=True):
        torch.testing.assert_close(got, want, msg=name)
    assert torch.autograd.gradcheck(lambda *t: selective_scan(*t, chunk=4), inputs)
