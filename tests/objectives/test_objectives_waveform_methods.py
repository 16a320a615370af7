"""Method-specific behaviour of data2vec2 and wavjepa (waveform encoders), checked against
independent computations."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F

from echoic.encoders import build_encoder
from echoic.encoders.base import TokenizedInput
from echoic.errors import ConfigError
from echoic.masking import build_masker
from echoic.objectives import build_objective
from echoic.objectives.data2vec2 import Data2Vec2Config
from echoic.objectives.wavjepa import JEPAPredictor, jepa_masks
from echoic.types import Features, TrainBatch

SMALL_D2V = {"clone_batch": 3, "decoder_dim": 32, "decoder_layers": 1}
SMALL_JEPA = {"predictor_dim": 32, "predictor_depth": 1, "predictor_heads": 2}


def wave(batch: int = 2, samples: int = 16000, seed: int = 0) -> Features:
    values = torch.randn(batch, 1, samples, generator=torch.Generator().manual_seed(seed)) * 0.1
    return Features(values, torch.full((batch,), samples), 1 / 16000, 0.0)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def runs(row: torch.Tensor) -> list[int]:
    """Lengths of the runs of True in a 1-D bool tensor."""
    lengths, current = [], 0
    for value in [*row.tolist(), False]:
        if value:
            current += 1
        elif current:
            lengths.append(current)
            current = 0
    return lengths


def manual_targets(layers: list[torch.Tensor]) -> torch.Tensor:
    """Instance norm over time per channel (eps 1e-5, no affine) of each layer, then the mean."""
    normed = []
    for y in layers:
        mean = y.mean(dim=1, keepdim=True)
        var = y.var(dim=1, unbiased=False, keepdim=True)
        normed.append((y - mean) / torch.sqrt(var + 1e-5))
    return torch.stack(normed).mean(dim=0)


# ----------------------------------------------------------------------------- data2vec2
def test_data2vec2_defaults_are_the_audio_recipe_and_need_no_cls_token() -> None:
    c = Data2Vec2Config()
    assert (c.clone_batch, c.mask_ratio, c.average_top_k_layers) == (8, 0.5, 8)
    assert c.mask_options == {"block": [1, 5], "adjust": 0.05, "inverse": False}
    assert (c.decoder_dim, c.decoder_layers, c.decoder_kernel, c.decoder_groups) == (384, 4, 7, 16)
    assert c.instance_norm_target_layer and not c.layer_norm_targets
    assert c.utterance_loss_weight == 0.0
    no_cls = build_encoder("wav_test", cls_token=False)
    obj = build_objective("data2vec2", no_cls, SMALL_D2V)
    out = obj(TrainBatch.of(wave()), gen())
    assert "utterance_loss" not in out.logs and out.loss.item() == pytest.approx(
        out.logs["frame_loss"]
    )
    with pytest.raises(ConfigError, match="CLS token"):
        build_objective("eat", build_encoder("wav_test", cls_token=False))
    with pytest.raises(ConfigError, match="1-D"):
        build_objective("data2vec2", build_encoder("vit_test"))


def test_data2vec2_masks_hide_half_the_frames_in_spans() -> None:
    c = Data2Vec2Config()
    sample = build_masker(c.mask, mask_ratio=c.mask_ratio, **c.mask_options)(64, (1, 100), gen())
    assert sample.masked.sum(dim=1).tolist() == [50] * 64
    lengths = [n for row in sample.masked for n in runs(row)]
    assert sum(lengths) / len(lengths) > 3.0  # spans of 5, merged or trimmed; random would be ~2


def test_data2vec2_teacher_sees_each_clip_once_and_students_the_kept_frames_of_clones() -> None:
    torch.manual_seed(0)
    obj = build_objective("data2vec2", build_encoder("wav_test"), SMALL_D2V).train()
    seen: dict[str, list[tuple[int, ...]]] = {"teacher": [], "student": []}
    obj.ema.blocks[0].register_forward_hook(lambda m, i, o: seen["teacher"].append(o.shape))
    obj.encoder.blocks[0].register_forward_hook(lambda m, i, o: seen["student"].append(o.shape))
    obj(TrainBatch.of(wave()), gen())
    n_time = 49  # 1 s at 16 kHz: 1 + (16000 - 400) // 320
    kept = n_time - round(0.5 * n_time)
    assert seen["teacher"] == [(2, 1 + n_time, 32)]  # CLS + frames
    assert seen["student"] == [(2 * 3, 1 + kept, 32)]


def test_data2vec2_runs_the_front_end_once_per_clip_and_the_teacher_reuses_it() -> None:
    torch.manual_seed(0)
    obj = build_objective("data2vec2", build_encoder("wav_test"), SMALL_D2V).train()
    calls: dict[str, list[int]] = {"student": [], "teacher": []}
    obj.encoder.feature_encoder.register_forward_hook(
        lambda m, i, o: calls["student"].append(o.shape[0])
    )
    obj.ema.feature_encoder.register_forward_hook(lambda m, i, o: calls["teacher"].append(1))
    obj(TrainBatch.of(wave()), gen()).loss.backward()
    assert calls == {"student": [2], "teacher": []}  # fairseq: clones after the local encoder


def test_data2vec2_hidden_frames_never_reach_a_clone() -> None:
    torch.manual_seed(0)
    obj = build_objective("data2vec2", build_encoder("wav_test"), SMALL_D2V).train()
    f = wave()
    local = obj.encoder.embed_tokens(f, add_positions=False).tokens.detach()
    sample = obj.masker(2 * 3, (1, 49), gen(7))  # the masks forward draws (clip-major clones)
    seen: list[torch.Tensor] = []
    real_forward = obj.encoder.forward_tokens

    def record(*args: Any, **kwargs: Any) -> Any:
        out = real_forward(*args, **kwargs)
        seen.append(out.last.detach())
        return out

    obj.encoder.forward_tokens = record
    hidden0 = sample.masked[0]  # clip 0, clone 0
    changed = local.clone()
    changed[0, hidden0] += 3.0
    for variant in (local, changed):
        _with_local(obj, variant)
        obj(TrainBatch.of(f), gen(7))
    torch.testing.assert_close(seen[1][0], seen[0][0])  # clone 0 never sees its hidden frames
    assert not torch.allclose(seen[1][1:3], seen[0][1:3])  # control: the other clones do
    torch.testing.assert_close(seen[1][3:], seen[0][3:])  # ... and clip 1 is untouched


def test_data2vec2_decoder_convolves_over_time_only() -> None:
    torch.manual_seed(0)
    obj = build_objective("data2vec2", build_encoder("wav_test"), SMALL_D2V)
    decoder = obj.decoder
    assert decoder.convs[0].kernel_size == (1, 7)
    n_time, t0 = 20, 9
    x = torch.randn(1, n_time, 32)
    bumped = x.clone()
    bumped[0, t0] += 5.0
    changed = (decoder(bumped, (1, n_time)) - decoder(x, (1, n_time))).abs().sum(-1)[0] > 1e-6
    assert changed.tolist() == [abs(t - t0) <= 3 for t in range(n_time)]


# ----------------------------------------------------------------------------- WavJEPA
def test_jepa_masks_have_exact_counts_targets_outside_the_context_and_follow_the_seed() -> None:
    context, targets = jepa_masks(16, 150, 30, 30, 4, 10, 10, gen(1))
    assert context.shape == (16, 150) and targets.shape == (16, 4, 150)
    assert context.sum(1).tolist() == [30] * 16
    assert targets.sum(2).flatten().tolist() == [30] * 64
    assert not (context[:, None] & targets).any()
    assert sum(runs(context[0])) == 30 and max(runs(context[0])) >= 5  # spans, not scattered
    again = jepa_masks(16, 150, 30, 30, 4, 10, 10, gen(1))
    other = jepa_masks(16, 150, 30, 30, 4, 10, 10, gen(2))
    assert torch.equal(again[0], context) and torch.equal(again[1], targets)
    assert not torch.equal(other[1], targets)
    assert not torch.equal(targets[:, 0], targets[:, 1])  # blocks are drawn independently
    with pytest.raises(ConfigError, match="longer crops"):
        jepa_masks(1, 10, 6, 5, 1, 2, 2, gen())


def test_jepa_predictor_blocks_do_not_see_each_other() -> None:
    torch.manual_seed(0)
    predictor = JEPAPredictor(16, 16, depth=2, heads=2, mlp_ratio=2.0)
    context = torch.randn(1, 5, 16)
    context_index = torch.tensor([[0, 1, 2, 8, 9]])
    no_pad = torch.zeros(1, 5, dtype=torch.bool)
    targets = torch.tensor([[[3, 4], [5, 6]]])
    moved = torch.tensor([[[3, 4], [6, 7]]])
    target_pad = torch.zeros(1, 2, 2, dtype=torch.bool)
    a = predictor(context, context_index, no_pad, targets, target_pad)
    b = predictor(context, context_index, no_pad, moved, target_pad)
    assert a.shape == (1, 2, 2, 16)
    torch.testing.assert_close(a[:, 0], b[:, 0])  # block 0 does not see block 1's positions
    assert not torch.allclose(a[:, 1], b[:, 1])


def _with_local(obj: Any, local: torch.Tensor) -> None:
    """Make the student's front end return ``local`` (its own padding and grid)."""
    real = obj.encoder.embed_tokens

    def embed(features: Features, **kwargs: Any) -> TokenizedInput:
        _, pad, grid = real(features, **kwargs)
        return TokenizedInput(local, pad, grid)

    obj.encoder.embed_tokens = embed


def test_wavjepa_context_outputs_ignore_every_frame_outside_the_context() -> None:
    torch.manual_seed(0)
    obj = build_objective("wavjepa", build_encoder("wav_test"), SMALL_JEPA).train()
    f = wave()
    local = obj.encoder.embed_tokens(f, add_positions=False).tokens.detach()
    context, _ = jepa_masks(2, 49, 10, 10, 4, 10, 10, gen(5))  # the masks forward draws
    seen: list[torch.Tensor] = []
    real_forward = obj.encoder.forward_tokens

    def record(*args: Any, **kwargs: Any) -> Any:
        out = real_forward(*args, **kwargs)
        seen.append(out.last.detach())
        return out

    obj.encoder.forward_tokens = record
    outside = local.clone()
    outside[~context] += 3.0
    inside = local.clone()
    inside[context] += 3.0
    losses = []
    for variant in (local, outside, inside):
        _with_local(obj, variant)
        losses.append(obj(TrainBatch.of(f), gen(5)).loss)
    torch.testing.assert_close(seen[1], seen[0])  # frames outside the context never reach it
    assert not torch.allclose(seen[2], seen[0])  # control: context frames do
    assert not torch.equal(losses[1], losses[0])  # ... while the targets see every frame


@pytest.mark.parametrize("loss", ["mse", "smooth_l1"])
def test_wavjepa_loss_is_the_error_against_instance_normed_teacher_layers(loss: str) -> None:
    torch.manual_seed(0)
    obj = build_objective("wavjepa", build_encoder("wav_test"), {**SMALL_JEPA, "loss": loss})
    obj.train()
    f = wave()
    captured: dict[str, torch.Tensor] = {}

    def zero_prediction(context, context_index, context_padding, target_index, target_padding):
        captured["index"] = target_index
        return torch.zeros(*target_index.shape, 32, requires_grad=True)

    obj.predictor.forward = zero_prediction
    out = obj(TrainBatch.of(f), gen(3))
    with torch.no_grad():  # the teacher is an exact copy of the student at initialisation
        layers = obj.ema(f).layers
    reference = manual_targets(layers[-2:])  # wav_test has 2 blocks: top-k = 2
    index = captured["index"]  # (B, k, M)
    wanted = torch.stack([reference[b, index[b]] for b in range(2)])  # (B, k, M, D)
    if loss == "mse":
        expected = (wanted**2).mean()
    else:
        expected = F.smooth_l1_loss(torch.zeros_like(wanted), wanted)
    torch.testing.assert_close(out.loss, expected, atol=1e-5, rtol=1e-5)
    assert out.logs["context_fraction"] == pytest.approx(round(0.2 * 49) / 49)


def test_wavjepa_refuses_patch_encoders_and_bad_ratios() -> None:
    with pytest.raises(ConfigError, match="1-D"):
        build_objective("wavjepa", build_encoder("vit_test"))
    with pytest.raises(ConfigError, match="context_ratio \\+ target_ratio"):
        build_objective(
            "wavjepa", build_encoder("wav_test"), {"context_ratio": 0.6, "target_ratio": 0.5}
        )
