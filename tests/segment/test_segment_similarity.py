"""Sylber's greedy frame-similarity segmentation on synthetic features with known segments."""

from __future__ import annotations

import numpy as np
import pytest

from echoic.embed.segment import (
    SimilarityConfig,
    segment_means,
    segment_times,
    similarity_segments,
)
from echoic.errors import ConfigError


def unit(degrees: float) -> np.ndarray:
    """A 2-d unit vector at ``degrees``."""
    angle = np.deg2rad(degrees)
    return np.array([np.cos(angle), np.sin(angle)], dtype=np.float32)


def piecewise(rng: np.random.Generator, lengths: list[int], dim: int = 16, noise: float = 0.05):
    """Frames constant within each segment (a random direction each) plus noise, and the true
    ``[start, end)`` segments."""
    directions = rng.standard_normal((len(lengths), dim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    frames = np.concatenate(
        [np.repeat(d[None], n, 0) for d, n in zip(directions, lengths, strict=True)]
    )
    frames = frames + noise * rng.standard_normal(frames.shape)
    ends = np.cumsum(lengths)
    return frames.astype(np.float32), np.stack([ends - np.asarray(lengths), ends], 1)


@pytest.mark.parametrize("refine", [True, False])
def test_recovers_piecewise_constant_segments(refine: bool) -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        lengths = rng.integers(3, 25, size=rng.integers(1, 8)).tolist()
        frames, truth = piecewise(rng, lengths)
        found = similarity_segments(frames, SimilarityConfig(refine=refine))
        np.testing.assert_array_equal(found, truth)


def test_silent_frames_break_segments_and_belong_to_none() -> None:
    rng = np.random.default_rng(1)
    frames, _ = piecewise(rng, [10, 10])
    silence = 0.01 * rng.standard_normal((5, frames.shape[1])).astype(np.float32)
    # A A | silence | A A: the same direction either side, split by the pause
    clip = np.concatenate([frames[:10], silence, frames[:10], silence[:2]])
    for config in (
        SimilarityConfig(norm_threshold=0.5),
        SimilarityConfig(relative_norm_threshold=0.3),  # median norm ~1: threshold ~0.3
    ):
        np.testing.assert_array_equal(similarity_segments(clip, config), [[0, 10], [15, 25]])
    # without a norm threshold the quiet frames are frames like any other: no gap at all
    found = similarity_segments(clip, SimilarityConfig(merge_threshold=-1.0))
    np.testing.assert_array_equal(found, [[0, clip.shape[0]]])


def test_merge_pass_joins_touching_segments_with_similar_means() -> None:
    # A A A | C E E E: C is 40 degrees from A (cosine 0.77 < 0.8) so the greedy pass splits
    # there, but the second segment's mean is ~25 degrees from A (cosine 0.91): one syllable
    frames = np.stack([unit(0)] * 3 + [unit(40)] + [unit(20)] * 3)
    greedy = similarity_segments(frames, SimilarityConfig(refine=False))
    np.testing.assert_array_equal(greedy, [[0, 3], [3, 7]])
    np.testing.assert_array_equal(similarity_segments(frames), [[0, 7]])


def test_refinement_moves_a_boundary_to_the_better_side() -> None:
    # A A A A X B B B B with X at 40 degrees: it joins A greedily (cosine 0.77 >= 0.75) but lies
    # closer to B's mean (60 degrees) than to the A segment's: the boundary moves before it
    frames = np.stack([unit(0)] * 4 + [unit(40)] + [unit(60)] * 4)
    config = SimilarityConfig(merge_threshold=0.75, refine=False)
    np.testing.assert_array_equal(similarity_segments(frames, config), [[0, 5], [5, 9]])
    config.refine = True
    np.testing.assert_array_equal(similarity_segments(frames, config), [[0, 4], [4, 9]])


def test_running_mean_not_last_frame() -> None:
    # a slow drift of 15 degrees a frame: each frame is close to the previous one, but the mean
    # falls behind, so the drift is cut into several segments
    frames = np.stack([unit(15 * t) for t in range(13)])
    found = similarity_segments(frames, SimilarityConfig(merge_threshold=0.9, refine=False))
    assert len(found) > 2
    assert all((end - start) < 13 for start, end in found)


def test_invariants_on_random_frames() -> None:
    rng = np.random.default_rng(2)
    for trial in range(10):
        frames = rng.standard_normal((300, 8)).astype(np.float32)
        frames[rng.random(300) < 0.1] *= 0.01  # some silent frames
        config = SimilarityConfig(merge_threshold=0.3 * (trial % 3), norm_threshold=0.2)
        found = similarity_segments(frames, config)
        assert (found[:, 1] > found[:, 0]).all()
        assert (found[1:, 0] >= found[:-1, 1]).all()  # in order, not overlapping
        covered = np.zeros(300, dtype=bool)
        for start, end in found:
            covered[start:end] = True
        speech = np.linalg.norm(frames, axis=1) >= 0.2
        np.testing.assert_array_equal(covered, speech)  # every speech frame, no silent one


def test_means_and_times() -> None:
    rng = np.random.default_rng(3)
    frames = rng.standard_normal((10, 4)).astype(np.float32)
    segments = np.array([[0, 3], [3, 4], [6, 10]])
    means = segment_means(frames, segments)
    for (start, end), mean in zip(segments, means, strict=True):
        np.testing.assert_allclose(mean, frames[start:end].mean(0), rtol=1e-5, atol=1e-6)
    centres = 0.01 + 0.02 * np.arange(10)  # 20 ms hop, first centre at 10 ms
    starts, ends = segment_times(segments, centres, duration_s=0.195)
    np.testing.assert_allclose(starts, [0.0, 0.06, 0.12])
    np.testing.assert_allclose(ends, [0.06, 0.08, 0.195])  # the last one clipped to the clip
    assert segment_means(frames, np.zeros((0, 2), int)).shape == (0, 4)
    assert segment_times(np.zeros((0, 2), int), centres, 0.2)[0].size == 0


def test_edge_cases_and_errors() -> None:
    assert similarity_segments(np.zeros((0, 5), np.float32)).shape == (0, 2)
    np.testing.assert_array_equal(similarity_segments(np.ones((1, 3))), [[0, 1]])
    with pytest.raises(ConfigError, match="NaN"):
        similarity_segments(np.full((4, 3), np.nan, np.float32))
    with pytest.raises(ConfigError, match=r"\(T, D\)"):
        similarity_segments(np.ones(5))
    with pytest.raises(ConfigError, match="cosine"):
        SimilarityConfig(merge_threshold=1.5)
