"""PaSST's patchout on the ViT: whole time columns / frequency rows and random tokens dropped in
training only, composing with every way an objective calls the encoder."""

from __future__ import annotations

import pytest
import torch

from echoic.config import from_dict, to_dict
from echoic.encoders import build_encoder
from echoic.encoders.vit import ViTConfig, ViTEncoder
from echoic.errors import ConfigError
from echoic.objectives import build_objective
from echoic.types import Features, TrainBatch


def features(frames: int = 128, batch: int = 2, seed: int = 0, bins: int = 128) -> Features:
    values = torch.randn(batch, bins, frames, generator=torch.Generator().manual_seed(seed))
    return Features(values, torch.full((batch,), frames), hop_s=0.01, first_centre_s=0.0125)


def encoder(name: str = "vit_test", **patchout: float) -> ViTEncoder:
    torch.manual_seed(0)
    enc = build_encoder(name, patchout=dict(patchout))
    assert isinstance(enc, ViTEncoder)
    return enc


@pytest.mark.parametrize("name", ["vit_test", "passt_test"])  # time- and frequency-major tokens
def test_structured_patchout_drops_whole_columns_and_rows(name: str) -> None:
    enc = encoder(name, time=3, freq=2).train()
    feats = features(128)
    n_freq, n_time = enc.grid(128)
    torch.manual_seed(5)
    out = enc(feats)
    kept = set(zip(out.time_index[0].tolist(), out.freq_index[0].tolist(), strict=True))
    assert torch.equal(out.token_index[0], out.token_index[1])  # one draw per batch
    columns = {t for t in range(n_time) if all((t, f) not in kept for f in range(n_freq))}
    rows = {f for f in range(n_freq) if all((t, f) not in kept for t in range(n_time))}
    assert len(columns) == 3 and len(rows) == 2
    expected = {(t, f) for t in range(n_time) for f in range(n_freq)}
    expected -= {(t, f) for t in columns for f in range(n_freq)}
    expected -= {(t, f) for t in range(n_time) for f in rows}
    assert kept == expected and out.last.shape[1] == (n_time - 3) * (n_freq - 2)


def test_random_patchout_drops_that_fraction_and_keeps_at_least_one_row_and_column() -> None:
    enc = encoder(random=0.25).train()
    n_tokens = enc.num_tokens(128)
    assert enc(features()).last.shape[1] == n_tokens - round(0.25 * n_tokens)
    greedy = encoder(time=1000, freq=1000).train()  # capped: one column and one row survive
    assert greedy(features()).last.shape[1] == 1


def test_eval_is_untouched() -> None:
    plain, dropping = encoder(), encoder(time=4, freq=3, random=0.3)
    dropping.load_state_dict(plain.state_dict())
    plain.eval(), dropping.eval()
    feats = features()
    with torch.no_grad():
        torch.testing.assert_close(dropping(feats).last, plain(feats).last, rtol=0, atol=0)
        tokens, pad, _ = dropping.embed_tokens(feats)
    assert not pad.any() and tokens.shape[1] == plain.num_tokens(128)


def test_gradients_flow_and_dropped_patches_contribute_nothing() -> None:
    enc = encoder(time=2, freq=2).train()
    feats = features()
    feats.values.requires_grad_(True)
    torch.manual_seed(3)
    out = enc(feats)
    out.last.pow(2).mean().backward()
    assert enc.patch_embed.proj.weight.grad is not None
    assert enc.patch_embed.proj.weight.grad.abs().sum() > 0
    patch_f, patch_t = enc.patch
    per_patch = feats.values.grad.abs().unflatten(1, (-1, patch_f)).unflatten(3, (-1, patch_t))
    touched = per_patch.sum(dim=(2, 4))[0] > 0  # (n_freq, n_time): patches with gradient
    kept = torch.zeros_like(touched)
    kept[out.freq_index[0], out.time_index[0]] = True
    assert torch.equal(touched, kept)


def test_tokens_the_caller_chose_come_back_with_the_dropped_ones_as_padding() -> None:
    """MAE / EAT (``keep_idx``) and SSAST (full grid through ``embed_tokens``) keep their tokens;
    dropped ones are padding and no other token reads them."""
    enc = encoder(time=2, freq=1).train()
    feats, n_tokens = features(), enc.num_tokens(128)
    keep = torch.arange(0, n_tokens, 2).expand(2, -1)
    torch.manual_seed(7)
    out = enc(feats, keep_idx=keep)
    assert torch.equal(out.token_index, keep) and out.padding_mask.any()
    torch.manual_seed(7)
    tokens, pad, grid = enc.embed_tokens(feats, add_positions=False)
    assert tokens.shape[1] == n_tokens and 0 < int(pad[0].sum()) < n_tokens
    full = enc.forward_tokens(enc.add_positions(tokens, grid, pad), pad, feats)
    # change the input under one dropped patch: no kept token's output moves
    changed = feats.values.clone()
    dropped = int(pad[0].nonzero()[0])
    t, f = int(full.time_index[0, dropped]), int(full.freq_index[0, dropped])
    patch_f, patch_t = enc.patch
    changed[:, f * patch_f : (f + 1) * patch_f, t * patch_t : (t + 1) * patch_t] += 5.0
    moved = Features(changed, feats.lengths, feats.hop_s, feats.first_centre_s)
    torch.manual_seed(7)
    tokens2, pad2, _ = enc.embed_tokens(moved, add_positions=False)
    assert torch.equal(pad, pad2)
    again = enc.forward_tokens(enc.add_positions(tokens2, grid, pad2), pad2, moved)
    torch.testing.assert_close(again.last[~pad], full.last[~pad])


@pytest.mark.parametrize("method", ["ssast", "mae"])
def test_an_objective_trains_with_patchout(method: str) -> None:
    enc = encoder(time=1, freq=1, random=0.1)
    objective = build_objective(method, enc, {"mask_ratio": 0.5}).train()
    optimiser = torch.optim.Adam(objective.parameters(), lr=1e-3)
    batch = TrainBatch.of(features(64))
    curve = []
    for step in range(12):
        loss = objective(batch, torch.Generator().manual_seed(step)).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        curve.append(float(loss.detach()))
    assert all(torch.isfinite(torch.tensor(curve)))
    assert sum(curve[-3:]) < sum(curve[:3]), curve


def test_patchout_config_round_trips_and_is_checked() -> None:
    config = ViTConfig(dim=32, depth=1, heads=2, patchout={"time": 2, "random": 0.1})  # type: ignore[arg-type]
    again = from_dict(ViTConfig, to_dict(config))
    assert again == config and again.patchout is not None and again.patchout.time == 2
    with pytest.raises(ConfigError, match="fraction"):
        build_encoder("vit_test", patchout={"random": 1.5})
    with pytest.raises(ConfigError, match="integer"):
        build_encoder("vit_test", patchout={"time": 1.5})
    with pytest.raises(ConfigError, match="Did you mean 'freq'"):
        build_encoder("vit_test", patchout={"frq": 2})
