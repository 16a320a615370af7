"""``scene_pool="segments"``: a clip's scene is the mean of its similarity-segment embeddings."""

import numpy as np
import pytest
import torch

import echoic.embed.embedder as embedder_module
from echoic.embed.embedder import Embedder
from echoic.embed.segment import SimilarityConfig, segments_scene, similarity_segments
from echoic.embed.segment_files import FrameSegmenter
from echoic.errors import ConfigError

SR = 16000


def _varied_clip(make_tone) -> np.ndarray:
    """~5.7 s of tones at six pitches and lengths between loud and quiet noise: frames of the
    tiny random models fall into segments of very different lengths."""
    rng = np.random.default_rng(0)
    parts = []
    for i, freq in enumerate([220, 880, 3000, 150, 5000, 440]):
        parts.append(make_tone(0.3 + 0.4 * (i % 3), freq=freq, seed=i))
        noise = rng.standard_normal(int(0.25 * SR)) * (0.5 if i % 2 else 0.01)
        parts.append(noise.astype(np.float32))
    return np.concatenate(parts)


def test_scene_is_the_mean_of_the_segment_embeddings(tiny_model, make_tone):
    wave = _varied_clip(make_tone)
    recipe = {"chunk_s": 1.28, "overlap_s": 0.32}  # several chunks, stitched
    mean = Embedder(tiny_model, scene_pool="mean", **recipe).embed([wave])[0]
    pooled = Embedder(tiny_model, scene_pool="segments", **recipe)
    seg = pooled.embed([wave])[0]
    # only the scene differs: native frames and timestamps are those of the mean pooling
    assert torch.equal(seg.frames, mean.frames)
    assert torch.equal(seg.timestamps, mean.timestamps)
    assert torch.equal(seg.timestamps_ms, mean.timestamps_ms)
    assert seg.scene.dtype == torch.float32 and seg.scene.shape == mean.scene.shape

    frames = mean.frames.numpy()
    segments = similarity_segments(frames, SimilarityConfig())
    lengths = segments[:, 1] - segments[:, 0]
    assert len(segments) > 2 and lengths.max() > 2 * lengths.min()  # unequal: a real test
    # at the defaults nothing is silence: the segments tile the frames
    assert segments[0, 0] == 0 and segments[-1, 1] == len(frames)
    assert (segments[1:, 0] == segments[:-1, 1]).all()

    # brute force: each segment's frames by index, plain numpy means, then their plain mean
    index_lists = [list(range(start, end)) for start, end in segments]
    by_hand = np.mean([frames[idx].astype(np.float64).mean(0) for idx in index_lists], axis=0)
    np.testing.assert_allclose(seg.scene.numpy(), by_hand, atol=1e-6, rtol=0)
    # = the mean of what `echoic segment` writes for the clip (its FrameSegmenter, defaults)
    written = FrameSegmenter(Embedder(tiny_model, **recipe)).segment([wave])[0]
    assert written.embeddings is not None and len(written) == len(segments)
    np.testing.assert_allclose(seg.scene.numpy(), written.embeddings.mean(0), atol=1e-6, rtol=0)
    # and not the frame mean (long segments weigh as much as short ones)
    assert not torch.allclose(seg.scene, mean.scene, atol=1e-4)
    # scene_embeddings (one pass) agrees with embed
    torch.testing.assert_close(pooled.scene_embeddings([wave])[0], seg.scene)


def test_a_model_directory_can_ask_for_segment_pooling(tiny_model, make_tone, tmp_path):
    import echoic

    tiny_model.config.embed = {"scene_pool": "segments"}
    echoic.save(tiny_model, tmp_path / "m")
    recommended = Embedder(echoic.load(tmp_path / "m"))
    assert recommended.config.scene_pool == "segments"
    explicit = Embedder(tiny_model, scene_pool="segments")
    assert recommended.identity == explicit.identity
    wave = _varied_clip(make_tone)
    torch.testing.assert_close(
        recommended.scene_embeddings([wave]), explicit.scene_embeddings([wave])
    )


def test_each_segment_counts_once_whatever_its_length():
    a, b = np.zeros(8, np.float32), np.zeros(8, np.float32)
    a[0], b[1] = 1.0, 3.0  # orthogonal: never merged
    frames = np.stack([a] * 10 + [b] * 2)
    segments = similarity_segments(frames)
    assert segments.tolist() == [[0, 10], [10, 12]]
    scene = segments_scene(frames)
    np.testing.assert_allclose(scene, (a + b) / 2, atol=1e-7)  # the midpoint
    frame_mean = frames.mean(0)
    np.testing.assert_allclose(frame_mean, (10 * a + 2 * b) / 12, atol=1e-7)  # near the long one
    assert np.linalg.norm(frame_mean - a) < np.linalg.norm(scene - a)
    assert scene[1] > frame_mean[1] and scene[0] < frame_mean[0]  # pulled towards the short one
    assert scene.dtype == np.float32 and scene.shape == (8,)


def test_silent_frames_are_left_out_and_all_silence_falls_back_to_the_frame_mean():
    rng = np.random.default_rng(1)
    loud = rng.standard_normal((5, 4)).astype(np.float32) * 10
    quiet = rng.standard_normal((7, 4)).astype(np.float32) * 0.01
    config = SimilarityConfig(norm_threshold=1.0)
    frames = np.concatenate([quiet[:3], loud, quiet[3:]])
    segments = similarity_segments(frames, config)
    assert segments.min() >= 3 and segments.max() <= 8  # the quiet frames belong to none
    expected = np.mean([frames[s:e].mean(0) for s, e in segments], axis=0)
    np.testing.assert_allclose(segments_scene(frames, config), expected, atol=1e-5, rtol=0)
    # no segment at all: the plain frame mean
    assert len(similarity_segments(quiet, config)) == 0
    np.testing.assert_allclose(segments_scene(quiet, config), quiet.mean(0), atol=1e-7, rtol=0)
    # non-finite frames (refused by the segmentation) give what the mean gives: NaN
    broken = loud.copy()
    broken[2, 1] = np.nan
    assert np.isnan(segments_scene(broken)[1])
    assert np.isnan(segments_scene(np.zeros((0, 4), np.float32))).all()


def test_the_embedder_falls_back_to_the_frame_mean(tiny_model, make_tone, monkeypatch):
    """At the defaults no frame is silence; with a threshold above every frame norm the pass finds
    no segment and the scene is the frame mean."""
    wave = make_tone(2.3, seed=2)
    mean = Embedder(tiny_model).embed([wave])[0]
    monkeypatch.setattr(
        embedder_module, "SimilarityConfig", lambda: SimilarityConfig(norm_threshold=1e9)
    )
    seg = Embedder(tiny_model, scene_pool="segments").embed([wave])[0]
    assert len(similarity_segments(seg.frames.numpy(), SimilarityConfig(norm_threshold=1e9))) == 0
    torch.testing.assert_close(seg.scene, mean.scene, atol=1e-6, rtol=0)


def test_identities_differ_by_scene_pool(tiny_model):
    base = Embedder(tiny_model)
    assert Embedder(tiny_model, scene_pool="mean").identity == base.identity
    segments = Embedder(tiny_model, scene_pool="segments").identity
    assert segments != base.identity
    assert segments != Embedder(tiny_model, scene_pool="mean+max").identity
    assert segments == Embedder(tiny_model, scene_pool="segments").identity  # stable


def test_a_bad_scene_pool_names_the_three_choices(tiny_model):
    with pytest.raises(ConfigError, match=r"'mean', 'mean\+max' or 'segments'; found 'median'"):
        Embedder(tiny_model, scene_pool="median")
