"""Sylber: the batched greedy segmentation, segment-mean targets, the mixing augmentation, both
stages' teachers, and learning on generated audio with the smoke recipe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from echoic.encoders import build_encoder
from echoic.errors import ConfigError
from echoic.features.base import build_frontend
from echoic.objectives import build_objective
from echoic.objectives.sylber import (
    SylberConfig,
    SylberObjective,
    mix_waveforms,
    segment_mean_targets,
    similarity_segment_ids,
    speech_frames,
)
from echoic.train.config import load_config
from echoic.types import AudioBatch, Features, TrainBatch

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "pretrain" / "sylber_test.yaml"


def segments_of(ids: torch.Tensor) -> list[list[int]]:
    """``[start, end)`` runs of equal non-negative ids in one row (independent of the code)."""
    out: list[list[int]] = []
    row = ids.tolist()
    for t, value in enumerate(row):
        if value < 0:
            continue
        if t > 0 and row[t - 1] == value:
            out[-1][1] = t + 1
        else:
            out.append([t, t + 1])
    return out


def piecewise(pieces: list[tuple[int, int, int, float]], steps: int, seed: int) -> torch.Tensor:
    """``(steps, 8)`` frames: each ``(start, end, axis, scale)`` piece is ``scale`` × a basis
    vector plus 1 % noise; frames outside every piece are 0.01-norm noise (silence)."""
    g = torch.Generator().manual_seed(seed)
    frames = 0.003 * torch.randn(steps, 8, generator=g)
    for start, end, axis, scale in pieces:
        frames[start:end, axis] += scale
        frames[start:end] += 0.01 * scale * torch.randn(end - start, 8, generator=g)
    return frames


# ------------------------------------------------------------------------------ segmentation
def test_batched_segmentation_finds_the_known_segments() -> None:
    first = piecewise([(0, 5, 0, 1.0), (5, 9, 1, 2.0), (12, 16, 2, 1.0), (16, 20, 2, 3.0)], 20, 0)
    second = piecewise([(0, 3, 3, 1.0), (3, 15, 4, 1.0)], 20, 1)
    second[15:] = 5.0 * torch.randn(5, 8)  # padding: loud, must still be in no segment
    frames = torch.stack([first, second])
    valid = torch.arange(20)[None, :] < torch.tensor([20, 15])[:, None]
    speech = speech_frames(frames, valid, norm_threshold=0.5, relative=0.0)
    ids = similarity_segment_ids(frames, speech, 0.8)
    # [12, 20) is one direction at two loudnesses: cosine ignores scale, so one segment
    assert segments_of(ids[0]) == [[0, 5], [5, 9], [12, 20]]
    assert segments_of(ids[1]) == [[0, 3], [3, 15]]
    assert ids[0].tolist()[:12] == [0] * 5 + [1] * 4 + [-1] * 3
    assert (ids[1, 15:] == -1).all()
    # a merge threshold above every within-segment cosine cuts every frame apart
    ids_strict = similarity_segment_ids(frames, speech, torch.tensor([1.01, 1.01]))
    assert len(segments_of(ids_strict[0])) == int(speech[0].sum())


def test_relative_silence_threshold_uses_the_items_median_norm() -> None:
    norms = torch.tensor([[0.9, 2.0, 3.0, 4.0, 0.1, 50.0]])
    frames = norms[..., None] * torch.tensor([1.0, 0.0])
    valid = torch.tensor([[True] * 5 + [False]])  # the padded 50 stays out of the median
    speech = speech_frames(frames, valid, norm_threshold=0.0, relative=0.5)  # 0.5 × 2.0
    assert speech.tolist() == [[False, True, True, True, False, False]]
    assert speech_frames(frames, valid, 0.0, 0.0).tolist() == valid.tolist()


@pytest.mark.parametrize(("merge", "absolute", "relative"), [(0.8, 0.0, 0.0), (0.9, 0.0, 0.6)])
def test_batched_segmentation_agrees_with_the_numpy_segmenter(
    merge: float, absolute: float, relative: float
) -> None:
    segment = pytest.importorskip("echoic.embed.segment")
    rng = np.random.default_rng(0)
    batch, steps, width = 3, 120, 16
    jumps = rng.random((batch, steps)) < 0.12
    walk = np.cumsum(
        rng.standard_normal((batch, steps, width)) * (0.15 + 3.0 * jumps[..., None]), 1
    )
    loudness = rng.uniform(0.05, 2.0, (batch, steps, 1))  # some frames are quiet
    frames = torch.from_numpy(walk * loudness)  # float64
    lengths = [120, 97, 64]
    valid = torch.arange(steps)[None, :] < torch.tensor(lengths)[:, None]
    ids = similarity_segment_ids(frames, speech_frames(frames, valid, absolute, relative), merge)
    config = segment.SimilarityConfig(
        merge_threshold=merge,
        norm_threshold=absolute,
        relative_norm_threshold=relative,
        refine=False,
    )
    for b, n in enumerate(lengths):
        expected = segment.similarity_segments(frames[b, :n].numpy(), config).tolist()
        assert segments_of(ids[b]) == expected
        assert 5 < len(expected) < n  # the case is not trivial


def test_segment_mean_targets_are_each_segments_mean_and_zero_in_silence() -> None:
    g = torch.Generator().manual_seed(0)
    frames = torch.randn(2, 10, 4, generator=g)
    ids = torch.tensor([[0, 0, 0, -1, 1, 1, 2, 2, 2, 2], [-1, 0, 0, 0, 0, 0, 1, 1, -1, -1]])
    targets = segment_mean_targets(frames, ids)
    assert targets.shape == frames.shape
    for b in range(2):
        for start, end in segments_of(ids[b]):
            mean = frames[b, start:end].mean(0)
            for t in range(start, end):  # constant within the segment, equal to its mean
                torch.testing.assert_close(targets[b, t], mean)
        assert (targets[b][ids[b] < 0] == 0).all()


# ------------------------------------------------------------------------------ augmentation
def waves(batch: int = 4, samples: int = 8000, seed: int = 0, padded: bool = True) -> Features:
    """Noise of four loudnesses; with ``padded`` two items are shorter than the batch."""
    g = torch.Generator().manual_seed(seed)
    loudness = torch.linspace(0.5, 2.0, batch)[:, None, None]
    values = torch.randn(batch, 1, samples, generator=g) * loudness
    short = [0, 1000, 0, 3000] if padded else [0, 0, 0, 0]
    lengths = samples - torch.tensor(short)[:batch]
    values = values * (torch.arange(samples)[None, None, :] < lengths[:, None, None])
    return Features(values, lengths, 1 / 16000, 0.0)


def snr_db(clean: torch.Tensor, interference: torch.Tensor) -> float:
    return float(10 * torch.log10(clean.pow(2).sum() / interference.pow(2).sum()))


def test_noise_mixing_hits_the_drawn_snr_range_and_keeps_padding_zero() -> None:
    feats = waves()
    config = SylberConfig(mix_prob=1.0, speech_mix_ratio=0.0, noise_snr_db=[5.0, 10.0])
    out, mixed = mix_waveforms(feats, torch.arange(4), config, torch.Generator().manual_seed(1))
    assert mixed.all()
    for b, n in enumerate(feats.lengths.tolist()):
        clean = feats.values[b, 0, :n]
        added = out.values[b, 0, :n] - clean
        assert 4.8 <= snr_db(clean, added) <= 10.2
        assert (out.values[b, 0, n:] == 0).all()
    unchanged, none = mix_waveforms(
        feats, torch.arange(4), SylberConfig(mix_prob=0.0), torch.Generator()
    )
    assert not none.any() and torch.equal(unchanged.values, feats.values)


def test_speech_mixing_adds_part_of_an_item_of_another_clip() -> None:
    feats = waves(padded=False)
    clip_index = torch.tensor([0, 0, 1, 1])  # two views per clip
    config = SylberConfig(mix_prob=1.0, speech_mix_ratio=1.0, speech_snr_db=[14.0, 20.0])
    out, _ = mix_waveforms(feats, clip_index, config, torch.Generator().manual_seed(2))
    for b, n in enumerate(feats.lengths.tolist()):
        added = out.values[b, 0, :n] - feats.values[b, 0, :n]
        present = added != 0
        # present over one run touching the start or the end, at least 30 % of the clip
        edges = present.int().diff().abs().sum()
        assert edges <= 1 and (bool(present[0]) or bool(present[-1]))
        assert present.float().mean() >= 0.29
        fits = []  # (residual, j, gain): added = gain × item j on the present samples?
        for j in range(4):
            other = feats.values[j, 0, :n] * present
            gain = float((added * other).sum() / other.pow(2).sum().clamp_min(1e-12))
            fits.append((float((added - gain * other).abs().max()), j, gain))
        residual, partner, gain = min(fits)
        assert residual < 1e-5 and clip_index[partner] != clip_index[b]
        # SNR of the clip against the whole partner at that gain (the level before windowing)
        clean_rms = feats.values[b, 0, :n].pow(2).mean().sqrt()
        partner_rms = feats.values[partner, 0].pow(2).mean().sqrt()
        assert 13.9 <= float(20 * torch.log10(clean_rms / (gain * partner_rms))) <= 20.1


# ------------------------------------------------------------------------------ the objective
def batch_of(feats: Features) -> TrainBatch:
    return TrainBatch.of(feats)


def build(seed: int = 0, **config: object) -> SylberObjective:
    torch.manual_seed(seed)
    obj = build_objective("sylber", build_encoder("wav_test"), dict(config))
    assert isinstance(obj, SylberObjective)
    return obj.train()


def test_the_teacher_reads_the_clean_clip_and_the_student_the_mixed_one() -> None:
    obj = build(mix_prob=1.0, teacher_seed=1)
    seen: dict[str, torch.Tensor] = {}
    obj.frozen_teacher.register_forward_pre_hook(
        lambda m, args: seen.__setitem__("teacher", args[0].values.clone())
    )
    obj.encoder.register_forward_pre_hook(
        lambda m, args: seen.__setitem__("student", args[0].values.clone())
    )
    feats = waves(2, 6400)
    out = obj(batch_of(feats), torch.Generator().manual_seed(0))
    assert torch.equal(seen["teacher"], feats.values)
    assert not torch.allclose(seen["student"], feats.values)
    assert out.logs["mixed_fraction"] == 1.0
    # the same draws without mixing give the same targets: only the student's input changed
    clean = build(mix_prob=0.0, teacher_seed=1)
    padding = clean.encoder.token_padding(feats)
    a = obj.targets(feats, padding, torch.Generator().manual_seed(0))
    b = clean.targets(feats, padding, torch.Generator().manual_seed(0))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_stage_two_regresses_onto_its_ema_teacher_which_the_hook_moves() -> None:
    obj = build(stage=2, ema_decay=0.9, ema_end_decay=0.9)
    teacher = obj.teacher()
    assert teacher is obj.ema and not hasattr(obj, "frozen_teacher")
    student = dict(obj.encoder.named_parameters())
    for name, p in obj.ema.named_parameters():
        assert torch.equal(p, student[name]) and not p.requires_grad
    calls: list[int] = []
    obj.ema.register_forward_hook(lambda m, i, o: calls.append(1))
    opt = torch.optim.SGD([p for p in obj.parameters() if p.requires_grad], lr=0.5)
    obj(batch_of(waves(2, 6400)), torch.Generator().manual_seed(0)).loss.backward()
    assert calls == [1]
    opt.step()
    before = {k: v.clone() for k, v in obj.ema.named_parameters()}
    assert all(torch.equal(before[k], v) for k, v in obj.ema.named_parameters())
    logs = obj.after_optimizer_step()
    assert logs == {"ema_decay": 0.9}
    moved = 0
    for name, p in obj.ema.named_parameters():
        torch.testing.assert_close(p, 0.9 * before[name] + 0.1 * student[name].detach())
        moved += int(not torch.equal(p, before[name]))
    assert moved > 0


def test_stage_two_state_round_trips() -> None:
    feats = waves(2, 6400)
    a, b = build(0, stage=2), build(1, stage=2)

    def loss(obj: SylberObjective) -> torch.Tensor:
        return obj(batch_of(feats), torch.Generator().manual_seed(3)).loss

    assert not torch.equal(loss(a), loss(b))
    b.load_state_dict(a.state_dict(), strict=True)
    assert torch.equal(loss(a), loss(b))


def test_stage_one_has_no_ema_and_its_hook_does_nothing() -> None:
    obj = build()
    assert obj.teacher() is None and obj.after_optimizer_step() == {}
    assert not any(p.requires_grad for p in obj.frozen_teacher.parameters())


def saved_model(tmp_path: Path, seed: int, **encoder_config: object) -> str:
    from echoic.checkpoint import EchoicModel, ModelConfig, save

    torch.manual_seed(seed)
    config = ModelConfig(
        encoder="wav_test", frontend="waveform", encoder_config=dict(encoder_config), name="t"
    )
    return str(save(EchoicModel(config), tmp_path / f"model{seed}"))


def test_a_teacher_model_initialises_the_student_or_gets_a_head(tmp_path: Path) -> None:
    same = saved_model(tmp_path, 5)
    from echoic.checkpoint import load_dir

    weights = load_dir(same).encoder.state_dict()
    for stage in (1, 2):
        obj = build(stage=stage, teacher=same)
        for name, value in obj.encoder.state_dict().items():
            assert torch.equal(value, weights[name]), (stage, name)
        assert isinstance(obj.head, torch.nn.Identity)
    wider = saved_model(tmp_path, 6, dim=48, heads=2)
    obj = build(teacher=wider)
    assert isinstance(obj.head, torch.nn.Linear) and obj.head.out_features == 48
    out = obj(batch_of(waves(2, 6400)), torch.Generator().manual_seed(0))
    assert torch.isfinite(out.loss)
    with pytest.raises(ConfigError, match="stage 2 starts the student"):
        build(stage=2, teacher=wider)


def test_configs_are_checked() -> None:
    with pytest.raises(ConfigError, match="stage"):
        SylberConfig(stage=3)
    with pytest.raises(ConfigError, match="merge_threshold"):
        SylberConfig(merge_threshold=[0.9, 0.8])
    with pytest.raises(ConfigError, match="waveform encoder"):
        build_objective("sylber", build_encoder("vit_test"))
    with pytest.raises(ConfigError, match="layer 7 does not exist"):
        build(teacher_layer=7)


def syllables(seconds: float, seed: int) -> np.ndarray:
    """Tone bursts of random pitch (~5 per second) with short gaps: syllable-like audio."""
    rng = np.random.default_rng(seed)
    sr, out, t = 16000, [], 0.0
    while t < seconds:
        n, gap = int(sr * rng.uniform(0.12, 0.25)), int(sr * rng.uniform(0.02, 0.08))
        k = np.arange(n) / sr
        burst = np.sin(2 * np.pi * rng.uniform(120, 800) * k) * np.hanning(n)
        out += [burst, 0.01 * rng.standard_normal(gap)]
        t += (n + gap) / sr
    return np.concatenate(out)[: int(seconds * sr)].astype(np.float32)


def test_the_smoke_recipe_learns_on_generated_audio() -> None:
    torch.set_num_threads(1)
    recipe = load_config(RECIPE)
    frontend = build_frontend(recipe.model.frontend, recipe.model.frontend_config)
    torch.manual_seed(recipe.seed)
    encoder = build_encoder(recipe.model.encoder, **recipe.model.encoder_config)
    obj = build_objective("sylber", encoder, recipe.objective.config).train()
    opt = torch.optim.AdamW(
        [p for p in obj.parameters() if p.requires_grad], lr=recipe.optim.lr, betas=(0.9, 0.95)
    )
    generator = torch.Generator().manual_seed(0)
    losses = []
    for step in range(30):
        audio = torch.from_numpy(np.stack([syllables(1.0, 4 * step + i) for i in range(4)]))
        feats = frontend(AudioBatch(audio, torch.full((4,), audio.shape[1]), 16000))
        out = obj(batch_of(feats), generator)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        obj.after_optimizer_step()
        losses.append(float(out.loss.detach()))
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses
