"""The discrete-target objectives (``beats``, ``hubert``): their targets, masks and losses against
independent computations, fitted tokenizers and teachers, and the refusals."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from echoic.checkpoint import EchoicModel, ModelConfig, save
from echoic.encoders import build_encoder
from echoic.errors import ConfigError
from echoic.objectives import build_objective
from echoic.objectives.beats import masked_cross_entropy
from echoic.objectives.discrete import grid_time_index, mfcc_steps, token_frames
from echoic.objectives.hubert import hubert_span_mask
from echoic.tokenizers import build_tokenizer
from echoic.types import Features, TrainBatch


def fbank(batch: int = 2, frames: int = 96, seed: int = 0) -> Features:
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(batch, 128, frames, generator=g)
    return Features(values, torch.tensor([frames, frames - 30]), hop_s=0.01, first_centre_s=0.0125)


def waveform(batch: int = 2, samples: int = 16000, seed: int = 0) -> Features:
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(batch, 1, samples, generator=g) * 0.1
    return Features(values, torch.tensor([samples, samples - 4000]), 1 / 16000, 0.0)


def test_iteration_zero_ids_are_the_cosine_nearest_random_codeword_of_each_patch() -> None:
    torch.manual_seed(0)
    obj = build_objective("beats", build_encoder("vit_test"), {"codebook_size": 32})
    feats = fbank()
    ids = obj.targets(feats, obj.encoder)  # (B, N, 1)
    tokenizer = obj.targets.tokenizer
    patches = obj.encoder.token_targets(feats)  # (B, N, 256)
    projected = F.normalize(patches @ tokenizer.projection[0], dim=-1)
    expected = (projected @ tokenizer.codebook[0].T).argmax(-1)
    assert ids.shape == (*patches.shape[:2], 1) and torch.equal(ids[..., 0], expected)
    # seeded: another objective built with the same tokenizer_seed gives the same ids
    again = build_objective("beats", build_encoder("vit_test"), {"codebook_size": 32})
    assert torch.equal(again.targets(feats, again.encoder), ids)
    assert not any(p.requires_grad for p in obj.targets.parameters())


def test_masked_cross_entropy_matches_a_direct_computation() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 2, 7, generator=g)
    ids = torch.randint(0, 7, (2, 5, 2), generator=g)
    valid = torch.tensor([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1]], dtype=torch.bool)
    loss, accuracy = masked_cross_entropy(logits, ids, valid)
    terms, hits = [], []
    for b in range(2):
        for m in range(5):
            if valid[b, m]:
                for c in range(2):
                    p = logits[b, m, c].softmax(-1)
                    terms.append(-math.log(float(p[ids[b, m, c]])))
                    hits.append(float(int(p.argmax()) == int(ids[b, m, c])))
    assert loss.item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)
    assert accuracy.item() == pytest.approx(sum(hits) / len(hits), rel=1e-6)


def test_beats_loss_is_only_on_hidden_patches() -> None:
    torch.manual_seed(0)
    obj = build_objective(
        "beats", build_encoder("vit_test"), {"predictor_dim": 32, "predictor_heads": 2}
    ).train()
    feats = fbank()
    out = obj(TrainBatch.of(feats), torch.Generator().manual_seed(0))
    assert out.logs["masked_fraction"] == pytest.approx(0.75, abs=0.02)
    # with the same masks, changing only the ids of visible patches leaves the loss unchanged
    sample = obj.masker(2, obj.encoder.grid(feats.n_frames), torch.Generator().manual_seed(0))
    base_ids = obj.targets(feats, obj.encoder)
    shifted = base_ids.clone()
    shifted[torch.arange(2)[:, None], sample.keep_idx] = 0
    obj.targets.forward = lambda features, student: shifted  # type: ignore[method-assign]
    again = obj(TrainBatch.of(feats), torch.Generator().manual_seed(0))
    assert torch.equal(out.loss, again.loss)


def test_beats_trains_the_beats_encoder_family() -> None:
    torch.manual_seed(0)
    obj = build_objective(
        "beats", build_encoder("beats_test"), {"predictor_dim": 32, "predictor_heads": 2}
    ).train()
    out = obj(TrainBatch.of(fbank(frames=128)), torch.Generator().manual_seed(0))
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert all(p.grad is not None for p in obj.encoder.parameters())


def test_a_fitted_tokenizer_is_used_and_a_mismatched_one_refused(tmp_path: Path) -> None:
    encoder = build_encoder("vit_test")
    feats = fbank()
    patches = encoder.token_targets(feats)
    tokenizer = build_tokenizer("kmeans", 256, {"n_clusters": 8, "init_frames": 100, "epochs": 1})
    tokenizer.fit([patches[0], patches[1]])
    tokenizer.source = {"target_frames": "patches"}
    tokenizer.save(tmp_path / "tok")
    obj = build_objective("beats", encoder, {"tokenizer": str(tmp_path / "tok")})
    assert torch.equal(obj.targets(feats, encoder), tokenizer(patches))
    assert obj.head.out_features == 8
    with pytest.raises(ConfigError, match="reads frames of 256 values"):
        build_objective("hubert", build_encoder("vit_test"), {"tokenizer": str(tmp_path / "tok")})


def test_mfcc_steps_follow_the_token_grid_and_are_normalised_per_clip() -> None:
    wav = build_encoder("wav_test")
    feats = waveform()
    steps = mfcc_steps(feats, wav.spec)
    n_time = wav.grid(feats.n_frames)[1]
    assert steps.shape == (2, n_time, 39)
    valid = ~wav.token_padding(feats)
    for b in range(2):
        kept = steps[b][valid[b]]
        assert (
            kept.mean(0).abs().max() < 1e-4 and (kept.std(0, correction=0) - 1).abs().max() < 1e-3
        )
    vit = build_encoder("vit_test")
    frames = token_frames("mfcc", fbank(), vit)
    index = grid_time_index(vit.spec, vit.grid(96))
    assert frames.shape == (2, index.numel(), 39)
    assert torch.equal(frames[:, 0], frames[:, 1])  # tokens of one time step share its MFCCs
    assert not torch.equal(frames[:, 0], frames[:, 8])  # 8 frequency tokens per step


def test_hubert_span_masks_have_the_paper_coverage_and_equal_counts() -> None:
    g = torch.Generator().manual_seed(0)
    masks = hubert_span_mask(torch.tensor([500, 500, 450, 480]), 500, 0.08, 10, g)
    counts = masks.sum(1)
    assert bool((counts == counts[0]).all())
    assert not masks[2, 450:].any()  # never past an item's valid steps
    # 40 distinct starts among 491 positions, spans of 10: P(step hidden) ~ 1 - (1 - 40/491)^10
    expected = 1 - (1 - 40 / 491) ** 10
    assert abs(counts[0].item() / 500 - expected) < 0.1
    runs = torch.diff(torch.cat([torch.zeros(1), masks[0].float(), torch.zeros(1)]))
    starts, ends = (runs == 1).nonzero(), (runs == -1).nonzero()
    assert (ends - starts).float().mean() >= 5  # spans, not scattered steps


def test_hubert_iteration_two_labels_batches_with_a_frozen_teacher(tmp_path: Path) -> None:
    torch.manual_seed(0)
    teacher = EchoicModel(ModelConfig(encoder="wav_test", frontend="waveform"))
    save(teacher, tmp_path / "iter1")
    feats = waveform()
    with torch.no_grad():
        layer = teacher.encoder(feats).layers[1]
    valid = ~teacher.encoder.token_padding(feats)
    tokenizer = build_tokenizer("kmeans", 32, {"n_clusters": 5, "init_frames": 100, "epochs": 1})
    tokenizer.fit([layer[0][valid[0]], layer[1][valid[1]]])
    tokenizer.save(tmp_path / "km")
    config = {
        "target_frames": "layer",
        "teacher": str(tmp_path / "iter1"),
        "teacher_layer": 1,
        "tokenizer": str(tmp_path / "km"),
        "final_dim": 16,
    }
    obj = build_objective("hubert", build_encoder("wav_test"), config).train()
    assert obj.targets.teacher is not None and not obj.targets.teacher.training
    assert torch.equal(obj.targets(feats, obj.encoder), tokenizer(layer, ~valid))
    out = obj(TrainBatch.of(feats), torch.Generator().manual_seed(0))
    out.loss.backward()
    assert all(p.grad is None for p in obj.targets.parameters())
    with pytest.raises(ConfigError, match="token grid"):
        build_objective("hubert", build_encoder("vit_test"), config)
    with pytest.raises(ConfigError, match="set teacher"):
        build_objective("hubert", build_encoder("wav_test"), {"target_frames": "layer"})
