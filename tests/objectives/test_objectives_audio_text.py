"""clap and slap: InfoNCE by hand, temperature clamping, slap's EMA targets and collapse logs,
the input masking, and the refusals."""

from __future__ import annotations

import math

import pytest
import torch

from echoic.encoders import build_encoder
from echoic.errors import ConfigError
from echoic.objectives import build_objective
from echoic.objectives.audio_text import AudioTextConfig, mask_features
from echoic.objectives.clap import ClapObjective, info_nce
from echoic.objectives.slap import SlapObjective
from echoic.types import Features, TrainBatch

CAPTIONS = ["a dog barking", "rain on a tin roof", "a violin", "a door slams"]


def batch(obj: ClapObjective | SlapObjective, n: int = 4, seed: int = 0) -> TrainBatch:
    g = torch.Generator().manual_seed(seed)
    feats = Features(torch.randn(n, 128, 48, generator=g), torch.full((n,), 48), 0.01, 0.0125)
    return TrainBatch.of(feats, text=obj.caption_tokenizer()(CAPTIONS[:n]))


def clap(**config: object) -> ClapObjective:
    torch.manual_seed(0)
    obj = build_objective("clap", build_encoder("vit_test"), {"text": "text_test", **config})
    assert isinstance(obj, ClapObjective)
    return obj.train()


def slap(**config: object) -> SlapObjective:
    torch.manual_seed(0)
    obj = build_objective("slap", build_encoder("vit_test"), {"text": "text_test", **config})
    assert isinstance(obj, SlapObjective)
    return obj.train()


def test_info_nce_equals_a_hand_computation_on_three_pairs() -> None:
    angles_a, angles_t = [0.0, 2.0, 4.0], [0.3, 1.9, 3.0]
    a = torch.tensor([[math.cos(x), math.sin(x)] for x in angles_a], dtype=torch.float64)
    t = torch.tensor([[math.cos(x), math.sin(x)] for x in angles_t], dtype=torch.float64)
    scale = 5.0
    logit = [[scale * math.cos(angles_a[i] - angles_t[j]) for j in range(3)] for i in range(3)]
    rows = [-logit[i][i] + math.log(sum(math.exp(v) for v in logit[i])) for i in range(3)]
    cols = [-logit[j][j] + math.log(sum(math.exp(logit[i][j]) for i in range(3))) for j in range(3)]
    expected = 0.5 * (sum(rows) / 3 + sum(cols) / 3)
    loss, _ = info_nce(a, t, torch.tensor(scale, dtype=torch.float64))
    assert abs(float(loss) - expected) < 1e-12
    # pairs 0 and 1 share a caption: each is not the other's negative
    same = torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    masked, _ = info_nce(a, t, torch.tensor(scale, dtype=torch.float64), same)
    kept = [[j for j in range(3) if j == i or not same[i, j]] for i in range(3)]
    rows = [-logit[i][i] + math.log(sum(math.exp(logit[i][j]) for j in kept[i])) for i in range(3)]
    cols = [-logit[j][j] + math.log(sum(math.exp(logit[i][j]) for i in kept[j])) for j in range(3)]
    assert abs(float(masked) - 0.5 * (sum(rows) / 3 + sum(cols) / 3)) < 1e-12


def test_temperature_starts_at_init_and_is_clamped_in_forward_and_after_the_step() -> None:
    obj = clap(init_temperature=0.07, max_logit_scale=100.0)
    assert abs(float(obj.scale().detach()) - 1 / 0.07) < 1e-4
    with torch.no_grad():
        obj.logit_scale.fill_(math.log(1000.0))
    assert abs(float(obj.scale().detach()) - 100.0) < 1e-3  # forward never uses more than the clamp
    out = obj(batch(obj), torch.Generator().manual_seed(0))
    assert abs(out.logs["logit_scale"] - 100.0) < 1e-3
    assert obj.after_optimizer_step() == {}
    assert (
        abs(float(obj.logit_scale.detach()) - math.log(100.0)) < 1e-6
    )  # the parameter itself (CLIP)
    with torch.no_grad():
        obj.logit_scale.fill_(-3.0)
    obj.after_optimizer_step()
    assert float(obj.logit_scale.detach()) == 0.0 and float(obj.scale().detach()) == 1.0


def test_the_temperature_learns() -> None:
    obj = clap()
    before = float(obj.logit_scale.detach())
    obj(batch(obj), torch.Generator().manual_seed(0)).loss.backward()
    assert obj.logit_scale.grad is not None and float(obj.logit_scale.grad) != 0.0
    assert before == float(obj.logit_scale.detach())


def test_slap_ema_update_moves_targets_by_the_decay_and_copies_no_frozen_tower() -> None:
    obj = slap(ema_decay=0.9, ema_end_decay=0.9)
    assert set(obj.ema) == {"encoder", "audio_projector", "text_projector", "text_tower"}
    online = {k: v.detach().clone() for k, v in obj.ema_source().state_dict().items()}
    target = {k: v.detach().clone() for k, v in obj.ema.state_dict().items()}
    with torch.no_grad():  # move the online weights so that the EMA has something to follow
        for p in obj.ema_source().parameters():
            p.add_(0.5)
    logs = obj.after_optimizer_step()
    assert logs["ema_decay"] == pytest.approx(0.9)
    params = dict(obj.ema.named_parameters())
    for name, p in params.items():
        expected = 0.9 * target[name] + 0.1 * (online[name] + 0.5)
        assert torch.allclose(p, expected, atol=1e-6), name
    assert int(obj.num_updates) == 1
    frozen = slap(text_config={"train": "frozen"})
    assert "text_tower" not in frozen.ema  # a frozen tower is its own target
    assert not any(p is q for p in frozen.ema.parameters() for q in frozen.text_tower.parameters())


def test_slap_logs_std_and_rank_of_both_modalities_every_n_steps() -> None:
    obj = slap(collapse_every=2)
    keys = {
        f"{m}_{s}" for m in ("audio", "text", "joint_audio", "joint_text") for s in ("std", "rank")
    }
    seen = []
    for step in range(4):
        out = obj(batch(obj, seed=step), torch.Generator().manual_seed(step))
        hook = obj.after_optimizer_step()
        seen.append((keys <= set(out.logs), keys <= set(hook)))
        if keys <= set(hook):
            assert all(hook[k] == out.logs[k] for k in keys)
            assert all(0 < hook[f"{m}_std"] < 1 for m in ("audio", "text"))
            assert all(1 <= hook[f"{m}_rank"] <= 4 for m in ("audio", "text"))  # <= min(B, D)
    assert seen == [(True, True), (False, False), (True, True), (False, False)]


def test_collapsed_embeddings_read_as_collapsed() -> None:
    same = torch.ones(6, 8) + 1e-9 * torch.randn(6, 8)
    logs = SlapObjective.collapse_logs({"audio": same, "text": torch.randn(6, 8)})
    assert logs["audio_std"] < 1e-6 and logs["audio_rank"] < 1.01
    assert logs["text_std"] > 0.1 and logs["text_rank"] > 3


def test_masking_hides_spans_drawn_from_the_generator_within_valid_frames() -> None:
    config = AudioTextConfig(time_masks=2, time_mask_max=0.2, freq_masks=1, freq_mask_max=0.2)
    values = torch.ones(3, 20, 50)
    feats = Features(values, torch.tensor([50, 30, 10]), 0.01, 0.0)
    a = mask_features(feats, config, True, torch.Generator().manual_seed(0)).values
    b = mask_features(feats, config, True, torch.Generator().manual_seed(0)).values
    c = mask_features(feats, config, True, torch.Generator().manual_seed(1)).values
    assert torch.equal(a, b) and not torch.equal(a, c)
    columns = (a == 0).all(1)  # (B, T): masked time steps
    assert int(columns[0].sum()) <= 2 * 10 and int(columns[2, 10:].sum()) == 0
    rows = (a == 0).all(2)  # (B, F): masked bins
    assert int(rows.sum(1).max()) <= 4 and a.eq(0).any()


def test_captions_are_required_and_one_view_per_clip() -> None:
    obj = clap()
    feats = batch(obj).features
    with pytest.raises(ConfigError, match=r"data\.captions"):
        obj(TrainBatch.of(feats), torch.Generator())
    tokens = obj.caption_tokenizer()(CAPTIONS[:2])
    with pytest.raises(ConfigError, match=r"data\.views: 1"):
        obj(TrainBatch.of(feats, views=2, text=tokens), torch.Generator())
    with pytest.raises(ConfigError, match="CLS"):
        build_objective(
            "clap", build_encoder("wav_test", cls_token=False), {"text": "text_test", "pool": "cls"}
        )


def test_pair_top1_counts_rows_whose_own_pair_scores_highest() -> None:
    import torch

    from echoic.objectives.audio_text import pair_top1

    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 1.0, 2.0], [0.0, 0.0, 5.0]])
    assert abs(pair_top1(logits) - 2 / 3) < 1e-6
