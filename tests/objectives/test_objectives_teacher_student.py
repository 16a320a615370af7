"""Method-specific behaviour of m2d, byol_a and tera, checked against independent computations."""

from __future__ import annotations

import pytest
import torch

from echoic.encoders import build_encoder
from echoic.masking import build_masker
from echoic.objectives import OBJECTIVES, build_objective
from echoic.objectives.byol_a import (
    BYOLAObjectiveConfig,
    augment_views,
    batch_statistics,
    collapse_metrics,
    mixup_partners,
)
from echoic.objectives.m2d import cosine_distance, grid_positions
from echoic.objectives.tera import TERAConfig, alter
from echoic.train.config import load_config
from echoic.train.module import build_model_config
from echoic.types import Features, TrainBatch

SMALL_M2D = {"predictor_dim": 32, "predictor_depth": 1, "predictor_heads": 2}


def feats(batch: int = 2, frames: int = 64, seed: int = 0, bins: int = 128) -> Features:
    values = torch.randn(batch, bins, frames, generator=torch.Generator().manual_seed(seed))
    return Features(values, torch.full((batch,), frames), hop_s=0.01, first_centre_s=0.0125)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def scramble(f: Features, tokens: torch.Tensor, n_freq: int = 8) -> Features:
    """``f`` with the pixels of the given (time-major) 16 × 16 patches of each item set to 100."""
    changed = f.values.clone()
    for b in range(tokens.shape[0]):
        for token in tokens[b].tolist():
            t, fr = divmod(token, n_freq)
            changed[b, fr * 16 : (fr + 1) * 16, t * 16 : (t + 1) * 16] = 100.0
    return Features(changed, f.lengths, f.hop_s, f.first_centre_s)


# ----------------------------------------------------------------------------- M2D
def test_cosine_distance_is_the_mse_of_normalised_vectors() -> None:
    a, b = torch.randn(5, 7), torch.randn(5, 7)
    na, nb = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(cosine_distance(a, b), ((na - nb) ** 2).sum(-1))
    torch.testing.assert_close(cosine_distance(a, 3 * a), torch.zeros(5), atol=1e-6, rtol=0)


def _m2d_target(obj: torch.nn.Module, f: Features, seed: int) -> torch.Tensor:
    seen: list[torch.Tensor] = []
    handle = obj.ema.register_forward_hook(lambda m, i, o: seen.append(o.last))
    obj(TrainBatch.of(f), gen(seed))
    handle.remove()
    assert len(seen) == 1
    return seen[0]


def test_m2d_target_sees_only_the_hidden_patches_and_online_only_the_visible() -> None:
    torch.manual_seed(0)
    obj = build_objective("m2d", build_encoder("vit_test"), SMALL_M2D)
    f = feats()
    sample = build_masker("random", mask_ratio=0.7)(2, (8, 4), gen(3))
    target = _m2d_target(obj, f, seed=3)
    assert target.shape == (2, sample.n_masked, 32)
    # changing visible patches leaves the target alone; changing hidden ones changes it
    torch.testing.assert_close(_m2d_target(obj, scramble(f, sample.keep_idx), seed=3), target)
    assert not torch.allclose(_m2d_target(obj, scramble(f, sample.masked_idx), seed=3), target)
    # ... and the online encoder is the mirror image
    online = obj.encoder(f, keep_idx=sample.keep_idx).last
    moved = obj.encoder(scramble(f, sample.masked_idx), keep_idx=sample.keep_idx).last
    torch.testing.assert_close(online, moved)


def test_m2d_loss_is_2_minus_2cos_against_the_target_of_hidden_patches() -> None:
    torch.manual_seed(0)
    obj = build_objective("m2d", build_encoder("vit_test"), SMALL_M2D).eval()
    f = feats()
    loss = obj(TrainBatch.of(f), gen(4)).loss
    sample = build_masker("random", mask_ratio=0.7)(2, (8, 4), gen(4))
    target = obj.ema(f, keep_idx=sample.masked_idx).last
    out = obj.encoder(f, keep_idx=sample.keep_idx)
    pos = grid_positions(obj.encoder.spec, (8, 4), 32, f.values.device)
    pred = obj.predictor(
        out.last, out.cls_layers[-1], sample.keep_idx, pos, torch.zeros(2, 32, dtype=torch.bool)
    )
    hidden = torch.stack([pred[b, sample.masked_idx[b]] for b in range(2)])
    cos = torch.nn.functional.cosine_similarity(hidden, target, dim=-1)
    torch.testing.assert_close(loss, (2 - 2 * cos).mean())


def test_m2d_exports_recommend_the_frequency_concatenated_frame_embedding(tmp_path) -> None:
    assert OBJECTIVES.get("m2d").embed_defaults == {"freq_pool": "concat"}
    config = load_config(None, ["--objective.name=m2d", "--model.encoder=vit_test"])
    assert build_model_config(config).embed == {"freq_pool": "concat"}
    override = load_config(
        None, ["--objective.name=m2d", "--model.embed={freq_pool: mean, layer: -2}"]
    )
    assert build_model_config(override).embed == {"freq_pool": "mean", "layer": -2}
    mae = load_config(None, ["--objective.name=mae"])
    assert build_model_config(mae).embed == {}


def test_m2d_teacher_is_a_separate_ema_copy_that_anneals() -> None:
    torch.manual_seed(0)
    cfg = {**SMALL_M2D, "ema_decay": 0.5, "ema_end_decay": 0.9, "ema_anneal_end_step": 4}
    obj = build_objective("m2d", build_encoder("vit_test"), cfg)
    decays = [obj.after_optimizer_step()["ema_decay"] for _ in range(6)]
    assert decays == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9, 0.9])
    assert int(obj.num_updates) == 6


# ----------------------------------------------------------------------------- BYOL-A
NO_AUG = {"mixup_ratio": 0.0, "crop_virtual_scale": [1.0, 1.0], "crop_scale": [1.0, 1.0]}


def test_mixup_partners_come_from_other_clips() -> None:
    clips = torch.tensor([0, 0, 1, 1, 2, 2])
    for seed in range(5):
        partners = mixup_partners(clips, gen(seed))
        assert (clips[partners] != clips).all()
    assert mixup_partners(torch.zeros(3, dtype=torch.long), gen()).tolist() == [0, 1, 2]


def test_byol_a_augmentations_are_identity_when_switched_off_and_do_what_they_say() -> None:
    x = torch.randn(3, 64, 40, generator=gen(1))
    partners = torch.tensor([1, 2, 0])
    off = BYOLAObjectiveConfig(**NO_AUG, fader_gain=0.0)
    torch.testing.assert_close(augment_views(x, partners, off, gen()), x, atol=1e-4, rtol=0)
    # mixup of an item with itself changes nothing (log((1-l) e^x + l e^x) = x)
    mix = BYOLAObjectiveConfig(**{**NO_AUG, "mixup_ratio": 0.4}, fader_gain=0.0)
    same = torch.arange(3)
    torch.testing.assert_close(augment_views(x, same, mix, gen()), x, atol=1e-4, rtol=0)
    # ... and with another item it lies between the two (a log-domain convex mix)
    mixed = augment_views(x, partners, mix, gen())
    low, high = torch.minimum(x, x[partners]), torch.maximum(x, x[partners])
    assert ((mixed >= low - 1e-5) & (mixed <= high + 1e-5)).all() and not torch.allclose(mixed, x)
    # the fader adds one linear ramp over time to every bin
    fade = BYOLAObjectiveConfig(**NO_AUG, fader_gain=1.0)
    ramp = augment_views(x, partners, fade, gen()) - x
    torch.testing.assert_close(ramp, ramp[:, :1].expand_as(ramp), atol=1e-4, rtol=0)
    steps = ramp[:, 0].diff(dim=-1)
    torch.testing.assert_close(steps, steps[:, :1].expand_as(steps), atol=1e-4, rtol=0)
    assert ramp[:, 0].abs().max() <= 1.0 + 1e-4
    # a crop at scale 0.5 with no canvas margin zooms in: the centre survives, stretched x2
    zoom = BYOLAObjectiveConfig(**{**NO_AUG, "crop_scale": [0.5, 0.5]}, fader_gain=0.0)
    ramp_t = torch.linspace(0, 1, 40).expand(1, 64, 40).contiguous()
    zoomed = augment_views(ramp_t, torch.zeros(1, dtype=torch.long), zoom, gen())
    slope = zoomed[0, 32].diff().median()
    assert slope == pytest.approx(0.5 / 39, rel=0.05)


def test_batch_statistics_normalise_per_batch_without_touching_running_stats() -> None:
    norm = torch.nn.BatchNorm1d(4).eval()
    x = torch.randn(16, 4) * 3 + 2
    before = {k: v.clone() for k, v in norm.state_dict().items()}
    with batch_statistics(norm):
        y = norm(x)
    torch.testing.assert_close(y.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    for k, v in norm.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not norm.training and norm.track_running_stats


def test_collapse_metrics_tell_a_collapsed_batch_from_a_spread_one() -> None:
    spread = torch.randn(64, 16, generator=gen())
    std, rank = collapse_metrics(spread)
    assert std == pytest.approx(16**-0.5, rel=0.2) and rank > 10
    collapsed = torch.randn(1, 16).expand(64, 16) + 1e-6 * torch.randn(64, 16)
    std, rank = collapse_metrics(collapsed)
    assert std < 1e-4 and rank < 1.1


def _synthetic_clips(n: int, bins: int = 64, frames: int = 96) -> torch.Tensor:
    """``n`` distinct log-mel-like clips: a few harmonic tracks of random pitch and slope."""
    g = gen(7)
    f = torch.arange(bins, dtype=torch.float32)[:, None]
    t = torch.arange(frames, dtype=torch.float32)[None, :]
    clips = []
    for _ in range(n):
        base = 4 + 20 * torch.rand(1, generator=g)
        slope = (torch.rand(1, generator=g) - 0.5) * 0.2
        track = base + slope * t
        x = sum(torch.exp(-((f - k * track) ** 2) / 4.0) for k in (1, 2, 3))
        clips.append(2.0 * x - 0.5 + 0.1 * torch.randn(bins, frames, generator=g))
    return torch.stack(clips)


def test_byol_a_does_not_collapse_in_a_short_run_on_tiny_data() -> None:
    torch.manual_seed(0)
    obj = build_objective("byol_a", build_encoder("byol_a_test"), {"projector_hidden": 64}).train()
    clips = _synthetic_clips(24)
    opt = torch.optim.AdamW([p for p in obj.parameters() if p.requires_grad], lr=1e-3)
    g, logs = gen(0), []
    for _ in range(40):
        pick = torch.randperm(24, generator=g)[:12]
        f = Features(clips[pick], torch.full((12,), 96), 0.01, 0.005)
        out = obj(TrainBatch.of(f), g)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        obj.after_optimizer_step()
        logs.append(out.logs)
    first = sum(x["byol_loss"] for x in logs[:5]) / 5
    last = sum(x["byol_loss"] for x in logs[-5:]) / 5
    assert last < first  # it learns ...
    tail_rank = min(x["effective_rank"] for x in logs[-10:])
    tail_std = min(x["embedding_std"] for x in logs[-10:])
    # ... without collapsing: a collapsed batch has rank 1 and std 0 (see the test above)
    assert tail_rank > 3.0, [round(x["effective_rank"], 2) for x in logs]
    assert tail_std > 0.2 * 32**-0.5, [round(x["embedding_std"], 3) for x in logs]


# ----------------------------------------------------------------------------- TERA
TIME_ONLY = {"freq_max": 0.0, "noise_probability": 0.0, "time_zero": 1.0, "time_random": 0.0}


def test_tera_time_alteration_zeroes_spans_of_seven_covering_about_15_percent() -> None:
    x = torch.randn(4, 80, 100, generator=gen(2)) + 5.0  # no value is 0 before altering
    lengths = torch.tensor([100, 100, 100, 60])
    altered, label = alter(x, lengths, TERAConfig(**TIME_ONLY), gen(3))
    for b, length in enumerate(lengths.tolist()):
        frames = label[b].all(dim=0)  # whole frames are labelled
        assert torch.equal(label[b].any(dim=0), frames)
        spans = round(length * 0.15 / 7)
        assert 7 <= int(frames.sum()) <= 7 * spans and not frames[length:].any()
        assert (altered[b][:, frames] == 0).all()
        torch.testing.assert_close(
            altered[b][:, ~frames][:, : length - int(frames.sum())],
            x[b][:, ~frames][:, : length - int(frames.sum())],
        )
        runs = torch.diff(frames.int(), prepend=torch.zeros(1, dtype=torch.int32))
        assert int((runs == 1).sum()) <= spans  # at most `spans` separate runs (overlaps merge)
    assert (altered[3, :, 60:] == 0).all()


def test_tera_frequency_band_and_noise() -> None:
    x = torch.randn(6, 80, 50, generator=gen(2)) + 5.0
    lengths = torch.full((6,), 50)
    band = {"time_proportion": 0.0, "noise_probability": 0.0}
    altered, label = alter(x, lengths, TERAConfig(**band), gen(4))
    widths = []
    for b in range(6):
        rows = label[b].all(dim=1)
        assert torch.equal(label[b].any(dim=1), rows)  # whole bins, every frame
        width = int(rows.sum())
        widths.append(width)
        assert width <= 16  # <= 20 % of 80 bins
        if width:
            first = int(rows.nonzero()[0])
            assert rows[first : first + width].all()  # one contiguous band
        assert (altered[b][rows] == 0).all()
        torch.testing.assert_close(altered[b][~rows], x[b][~rows])
    assert max(widths) > 0
    noisy = {"time_proportion": 0.0, "freq_max": 0.0, "noise_probability": 1.0}
    altered, label = alter(x, lengths, TERAConfig(**noisy), gen(4))
    assert not label.any()  # noise alone marks nothing for the loss
    assert (altered - x).std().item() == pytest.approx(0.2, rel=0.1)


def test_tera_loss_is_l1_over_the_altered_values_only() -> None:
    torch.manual_seed(0)
    obj = build_objective("tera", build_encoder("tera_test"))
    torch.nn.init.zeros_(obj.head[-1].weight)
    torch.nn.init.zeros_(obj.head[-1].bias)  # predicts 0 everywhere
    f = feats(batch=3, frames=90, bins=80)
    loss = obj(TrainBatch.of(f), gen(6)).loss
    _, label = alter(f.values, f.lengths, TERAConfig(), gen(6))
    assert label.any() and not label.all()
    torch.testing.assert_close(loss, f.values[label].abs().mean())


def test_tera_trains_a_vit_on_patches_too() -> None:
    torch.manual_seed(0)
    obj = build_objective("tera", build_encoder("vit_test"))
    assert obj.head[-1].out_features == 16 * 16
    out = obj(TrainBatch.of(feats()), gen())
    assert torch.isfinite(out.loss) and 0 < out.logs["altered_fraction"] < 0.6
