"""Method-specific behaviour of asit, checked against independent computations."""

from __future__ import annotations

import math

import pytest
import torch

from echoic.encoders import build_encoder
from echoic.errors import ConfigError
from echoic.objectives import build_objective
from echoic.objectives.asit import distill, gmml_mask, pixel_mask
from echoic.types import Features, TrainBatch

SMALL = {"head_hidden": 32, "head_bottleneck": 16, "out_dim": 64, "local_crops": 2}


def feats(batch: int = 4, frames: int = 64, seed: int = 0) -> Features:
    values = torch.randn(batch, 128, frames, generator=torch.Generator().manual_seed(seed))
    return Features(values, torch.full((batch,), frames), hop_s=0.01, first_centre_s=0.0125)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def adjacent_pairs(hidden: torch.Tensor, grid: tuple[int, int]) -> int:
    """Hidden patches whose frequency neighbour above is hidden too (time-major tokens)."""
    g = hidden.reshape(hidden.shape[0], grid[1], grid[0])  # (B, nT, nF)
    return int((g[:, :, 1:] & g[:, :, :-1]).sum())


def test_gmml_masks_have_exact_counts_and_are_made_of_rectangles() -> None:
    grid = (8, 30)
    blocks = gmml_mask(32, grid, 0.5, 4, gen(1))
    single = gmml_mask(32, grid, 0.5, 1, gen(1))
    assert blocks.sum(1).tolist() == [120] * 32 and single.sum(1).tolist() == [120] * 32
    assert adjacent_pairs(blocks, grid) > 1.3 * adjacent_pairs(single, grid)
    assert torch.equal(gmml_mask(32, grid, 0.5, 4, gen(1)), blocks)


def test_pixel_mask_covers_exactly_the_hidden_patches() -> None:
    encoder = build_encoder("vit_test")
    f = feats(batch=2, frames=60)  # 4 time patches, the last one partial
    grid = encoder.grid(f.n_frames)
    hidden = gmml_mask(2, grid, 0.5, 2, gen(2))
    where = pixel_mask(hidden, encoder.spec, f.n_frames)
    assert where.shape == f.values.shape
    changed = Features(f.values.masked_fill(where, 7.0), f.lengths, f.hop_s, f.first_centre_s)
    diff = (encoder.token_targets(changed) - encoder.token_targets(f)).abs().sum(-1) > 0
    assert torch.equal(diff, hidden)  # the encoder's own patchify sees exactly those patches


def test_distillation_centres_and_sharpens_the_teacher() -> None:
    k = 16
    teacher = torch.randn(3, k)
    student = torch.randn(3, k)
    # a teacher equal to its centre is uniform: cross-entropy = logsumexp(s/T) − mean(s/T)
    ce = distill(student, teacher, teacher[0], 0.1, 0.04)[0]
    s = student[0] / 0.1
    torch.testing.assert_close(ce, torch.logsumexp(s, 0) - s.mean())
    # a sharp teacher (low temperature) puts the target on its arg-max
    spiky = distill(student, teacher, torch.zeros(k), 0.1, 1e-4)
    expected = -torch.log_softmax(student / 0.1, -1).gather(1, teacher.argmax(1, keepdim=True))
    torch.testing.assert_close(spiky, expected[:, 0])
    assert distill(torch.zeros(1, k), torch.zeros(1, k), torch.zeros(k), 0.1, 0.04).item() == (
        pytest.approx(math.log(k))
    )


def test_centres_start_at_the_first_batch_then_follow_it_with_momentum() -> None:
    torch.manual_seed(0)
    obj = build_objective("asit", build_encoder("vit_test"), SMALL).train()
    f = feats()
    obj(TrainBatch.of(f, views=2), gen())
    first = obj.cls_pending.clone()
    assert not torch.equal(first, torch.zeros_like(first))
    obj.after_optimizer_step()
    torch.testing.assert_close(obj.cls_center, first)
    obj(TrainBatch.of(feats(seed=1), views=2), gen(1))
    second = obj.cls_pending.clone()
    obj.after_optimizer_step()
    torch.testing.assert_close(obj.cls_center, 0.9 * first + 0.1 * second)


def test_asit_logs_collapse_checks_and_uses_the_other_global_view() -> None:
    torch.manual_seed(0)
    obj = build_objective("asit", build_encoder("vit_test"), {**SMALL, "local_crops": 0})
    obj.train()
    f = feats()
    out = obj(TrainBatch.of(f, views=2), gen(3))
    assert {"embedding_std", "effective_rank", "teacher_entropy"} <= set(out.logs)
    assert 0.0 < out.logs["teacher_entropy"] <= math.log(64) + 1e-6
    # one view per clip: each corrupted view is distilled from its own clean view instead
    same_view = obj(TrainBatch.of(f, views=1), gen(3)).logs["global_loss"]
    assert out.logs["global_loss"] != pytest.approx(same_view)


def test_asit_refuses_encoders_it_cannot_corrupt() -> None:
    with pytest.raises(ConfigError, match="CLS token"):
        build_objective("asit", build_encoder("wav_test"))
    with pytest.raises(ConfigError, match="non-overlapping"):
        build_objective("asit", build_encoder("vit_test", patch_stride=(8, 8)))
