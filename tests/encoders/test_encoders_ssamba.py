"""SSAMBA (bidirectional Mamba over patches) under the objectives that train the ViT.

The Encoder protocol itself is checked by ``test_encoders_contract.py`` (every registered size) and
the Mamba blocks against mambapy by ``tests/layers/test_layers_mamba.py``.
"""

from __future__ import annotations

import pytest
import torch

from echoic.encoders import build_encoder
from echoic.objectives import build_objective
from echoic.types import Features, TrainBatch


def features(lengths: tuple[int, ...] = (64, 40), seed: int = 0) -> Features:
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(len(lengths), 128, max(lengths), generator=g)
    for i, n in enumerate(lengths):
        values[i, :, n:] = 0.0
    return Features(values, torch.tensor(lengths), hop_s=0.01, first_centre_s=0.0125)


@pytest.mark.parametrize("method", ["ssast", "mae", "eat"])
def test_objective_trains_every_ssamba_parameter(method: str) -> None:
    torch.manual_seed(0)
    objective = build_objective(method, build_encoder("ssamba_test")).train()
    out = objective(TrainBatch.of(features()), torch.Generator().manual_seed(0))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    for name, p in objective.encoder.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"{method}: zero gradient on encoder.{name}"


def test_ssast_loss_goes_down_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    objective = build_objective("ssast", build_encoder("ssamba_test"), {"mask_ratio": 0.5})
    optimiser = torch.optim.Adam(objective.parameters(), lr=1e-3)
    batch = TrainBatch.of(features())
    curve = []
    for step in range(12):
        loss = objective(batch, torch.Generator().manual_seed(step)).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        curve.append(float(loss.detach()))
    assert sum(curve[-3:]) < sum(curve[:3]), curve


@torch.no_grad()
def test_kept_tokens_are_scanned_alone() -> None:
    """MAE's path: kept tokens give the output of the sequence made of only those tokens."""
    torch.manual_seed(0)
    encoder = build_encoder("ssamba_test").eval()
    feats = features((64, 64))
    keep = torch.tensor([[0, 3, 8, 9, 20], [1, 2, 17, 30, 31]])
    out = encoder(feats, keep_idx=keep)
    tokens, pad, _ = encoder.embed_tokens(feats)
    alone = encoder.forward_tokens(
        torch.gather(tokens, 1, keep[..., None].expand(-1, -1, tokens.shape[-1])),
        torch.gather(pad, 1, keep),
        feats,
        token_index=keep,
    )
    torch.testing.assert_close(out.last, alone.last)
    # and they are not what the full sequence gives at those positions (context matters)
    full = encoder(feats).last
    picked = torch.gather(full, 1, keep[..., None].expand(-1, -1, full.shape[-1]))
    assert (picked - out.last).abs().max() > 1e-3
