"""Method-specific behaviour of mae, eat and ssast, checked against independent computations."""

from __future__ import annotations

import math

import pytest
import torch

from echoic.encoders import build_encoder
from echoic.layers import patchify
from echoic.masking import build_masker
from echoic.objectives import build_objective
from echoic.objectives.base import annealed_decay, ema_update
from echoic.objectives.eat import ConvDecoder2d, layer_targets
from echoic.objectives.mae import normalise_targets
from echoic.objectives.ssast import info_nce
from echoic.types import Features, TrainBatch

SMALL_EAT = {"clone_batch": 3, "decoder_dim": 32, "decoder_layers": 2}
SMALL_MAE = {"decoder_dim": 32, "decoder_depth": 1, "decoder_heads": 2}


def feats(batch: int = 2, frames: int = 64, seed: int = 0) -> Features:
    values = torch.randn(batch, 128, frames, generator=torch.Generator().manual_seed(seed))
    return Features(values, torch.full((batch,), frames), hop_s=0.01, first_centre_s=0.0125)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- MAE
def test_patch_targets_are_normalised_per_patch() -> None:
    values = torch.randn(2, 128, 40) * 3 + 5
    raw = patchify(values, (16, 16))
    t = normalise_targets(raw, normalise=True)
    manual = (raw - raw.mean(-1, keepdim=True)) / torch.sqrt(raw.var(-1, keepdim=True) + 1e-6)
    torch.testing.assert_close(t, manual)
    torch.testing.assert_close(t.mean(-1), torch.zeros(t.shape[:2]), atol=1e-5, rtol=0)


def test_mae_loss_is_the_error_on_hidden_patches_only() -> None:
    torch.manual_seed(0)
    obj = build_objective("mae", build_encoder("vit_test"), {**SMALL_MAE, "norm_pix_loss": False})
    torch.nn.init.zeros_(obj.decoder_pred.weight)
    torch.nn.init.zeros_(obj.decoder_pred.bias)  # predicts 0 everywhere
    f = feats()
    loss = obj(TrainBatch.of(f), gen(5)).loss
    hidden = build_masker("random", mask_ratio=0.8)(2, (8, 4), gen(5)).masked
    target = patchify(f.values, (16, 16))
    expected = (target[hidden] ** 2).mean()
    torch.testing.assert_close(loss, expected)


def test_hidden_patches_never_reach_the_mae_encoder() -> None:
    torch.manual_seed(0)
    obj = build_objective("mae", build_encoder("vit_test"), SMALL_MAE)
    f = feats()
    sample = build_masker("random", mask_ratio=0.8)(2, (8, 4), gen(1))
    changed = f.values.clone()
    for b in range(2):  # scramble the pixels of every hidden patch
        for token in sample.masked_idx[b].tolist():
            t, fr = divmod(token, 8)
            changed[b, fr * 16 : (fr + 1) * 16, t * 16 : (t + 1) * 16] = 100.0
    out_a = obj.encoder(f, keep_idx=sample.keep_idx)
    out_b = obj.encoder(Features(changed, f.lengths, f.hop_s, f.first_centre_s), sample.keep_idx)
    torch.testing.assert_close(out_a.last, out_b.last)


# ----------------------------------------------------------------------------- EAT
def test_layer_targets_match_a_manual_instance_then_layer_norm() -> None:
    layers = [torch.randn(2, 10, 8) * (i + 1) + i for i in range(3)]
    out = layer_targets(layers, instance_norm_each=True, layer_norm_result=True)
    normed = []
    for x in layers:
        mean = x.mean(dim=1, keepdim=True)
        var = x.var(dim=1, unbiased=False, keepdim=True)
        normed.append((x - mean) / torch.sqrt(var + 1e-5))
    avg = sum(normed) / 3
    expected = (avg - avg.mean(-1, keepdim=True)) / torch.sqrt(
        avg.var(-1, unbiased=False, keepdim=True) + 1e-5
    )
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_eat_teacher_sees_each_full_clip_once_and_students_see_clones_of_kept_tokens() -> None:
    torch.manual_seed(0)
    obj = build_objective("eat", build_encoder("vit_test"), SMALL_EAT).train()
    seen: dict[str, list[tuple[int, ...]]] = {"teacher": [], "student": []}
    obj.ema.patch_embed.register_forward_hook(
        lambda m, i, o: seen["teacher"].append(tuple(o.shape))
    )
    obj.encoder.patch_embed.register_forward_hook(
        lambda m, i, o: seen["student"].append(tuple(o.shape))
    )
    obj(TrainBatch.of(feats(batch=2)), gen())
    n_tokens = 32
    kept = n_tokens - round(0.8 * n_tokens)
    assert seen["teacher"] == [(2, n_tokens, 32)]
    assert seen["student"] == [(2 * 3, kept, 32)]


def test_ema_update_matches_the_formula_and_annealing_is_linear() -> None:
    torch.manual_seed(0)
    student, teacher = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    expected = 0.9 * teacher.weight.detach() + 0.1 * student.weight.detach()
    ema_update(teacher, student, 0.9)
    torch.testing.assert_close(teacher.weight.detach(), expected)
    assert annealed_decay(0.9998, 0.99999, 0, 100_000) == 0.9998
    assert math.isclose(annealed_decay(0.9998, 0.99999, 50_000, 100_000), (0.9998 + 0.99999) / 2)
    assert annealed_decay(0.9998, 0.99999, 200_000, 100_000) == 0.99999


def test_eat_hook_counts_updates_and_anneals() -> None:
    torch.manual_seed(0)
    cfg = {**SMALL_EAT, "ema_decay": 0.5, "ema_end_decay": 0.9, "ema_anneal_end_step": 4}
    obj = build_objective("eat", build_encoder("vit_test"), cfg)
    decays = [obj.after_optimizer_step()["ema_decay"] for _ in range(6)]
    assert decays == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9, 0.9])
    assert int(obj.num_updates) == 6


def test_conv_decoder_mixes_only_grid_neighbours() -> None:
    torch.manual_seed(0)
    n_freq, n_time, dim = 4, 6, 8
    decoder = ConvDecoder2d(dim, 8, layers=1, kernel=3, groups=1)
    x = torch.randn(1, n_freq * n_time, dim)
    base = decoder(x, (n_freq, n_time))
    t0, f0 = 2, 1
    bumped = x.clone()
    bumped[0, t0 * n_freq + f0] += 5.0  # time-major token order
    changed = (decoder(bumped, (n_freq, n_time)) - base).abs().sum(-1)[0] > 1e-6
    for token in range(n_freq * n_time):
        t, f = divmod(token, n_freq)
        assert bool(changed[token]) == (abs(t - t0) <= 1 and abs(f - f0) <= 1), (t, f)


# ----------------------------------------------------------------------------- SSAST
def test_info_nce_perfect_and_uninformative_predictions() -> None:
    target = torch.eye(6)[None].repeat(2, 1, 1) * 10  # (2, 6, 6), distinct patches
    valid = torch.ones(2, 6, dtype=torch.bool)
    loss, acc = info_nce(target.clone(), target, valid)
    assert float(acc) == 1.0 and float(loss) < 1e-6
    loss, _ = info_nce(torch.ones(2, 6, 6), target, valid)
    assert math.isclose(float(loss), math.log(6), rel_tol=1e-6)


def test_info_nce_ignores_padding_patches() -> None:
    target = torch.randn(1, 5, 4)
    pred = torch.randn(1, 5, 4)
    valid = torch.tensor([[True, True, True, False, False]])
    loss, _ = info_nce(pred, target, valid)
    small, _ = info_nce(pred[:, :3], target[:, :3], torch.ones(1, 3, dtype=torch.bool))
    torch.testing.assert_close(loss, small)


def test_ssast_hidden_content_is_replaced_by_the_mask_embedding() -> None:
    torch.manual_seed(0)
    obj = build_objective("ssast", build_encoder("vit_test"), {"shared_pass": True})
    f = feats()
    hidden_a, idx = obj.encode_masked(f, gen(2))
    changed = f.values.clone()
    for b in range(2):
        for token in idx[b].tolist():
            t, fr = divmod(token, 8)
            changed[b, fr * 16 : (fr + 1) * 16, t * 16 : (t + 1) * 16] = -50.0
    hidden_b, _ = obj.encode_masked(Features(changed, f.lengths, f.hop_s, f.first_centre_s), gen(2))
    torch.testing.assert_close(hidden_a, hidden_b)


@pytest.mark.parametrize(("shared", "passes"), [(False, 2), (True, 1)])
def test_ssast_runs_one_encoder_pass_per_task_unless_shared(shared: bool, passes: int) -> None:
    obj = build_objective("ssast", build_encoder("vit_test"), {"shared_pass": shared})
    calls = []
    obj.encoder.blocks[0].register_forward_hook(lambda m, i, o: calls.append(o.shape[0]))
    obj(TrainBatch.of(feats()), gen())
    assert len(calls) == passes


@pytest.mark.parametrize("name", ["mae", "eat", "ssast"])
def test_bf16_autocast_and_padded_items(name: str) -> None:
    """The GPU path (bf16-mixed) and zero-padded clips: finite fp32 loss, finite gradients."""
    torch.manual_seed(0)
    config = {"mae": SMALL_MAE, "eat": {**SMALL_EAT, "clone_batch": 2}, "ssast": {}}[name]
    obj = build_objective(name, build_encoder("vit_test"), config)
    f = feats(frames=48)
    f.values[1, :, 40:] = 0.0
    f.lengths[1] = 40  # the second clip's last time patch is padding
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = obj(TrainBatch.of(f), gen()).loss
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in obj.parameters())
