import math

import numpy as np
import pytest
import torch

from echoic.data.batch import pad_batch
from echoic.embed.embedder import Embedder
from echoic.errors import ConfigError

SR = 16000


def _direct_frames(model, wave: np.ndarray, layer: int = -1) -> torch.Tensor:
    """Frame embeddings of one clip in one forward pass, without the Embedder's machinery."""
    with torch.no_grad():
        out = model(pad_batch([torch.from_numpy(wave)], SR))
    n_freq = out.grid[0]
    tokens = out.layers[layer][0]
    valid = int((~out.padding_mask[0]).sum())
    order = torch.argsort(out.time_index[0][:valid] * n_freq + out.freq_index[0][:valid])
    return tokens[:valid][order].reshape(valid // n_freq, n_freq, -1).mean(1)


def test_short_clip_equals_one_direct_forward(tiny_model, make_tone):
    wave = make_tone(1.7)
    emb = Embedder(tiny_model).embed([wave])[0]
    direct = _direct_frames(tiny_model, wave)
    torch.testing.assert_close(emb.frames, direct, atol=1e-5, rtol=0)
    torch.testing.assert_close(emb.scene, direct.mean(0), atol=1e-5, rtol=0)


def test_batch_of_different_lengths_equals_one_at_a_time(tiny_model, make_tone):
    embedder = Embedder(tiny_model, chunk_s=2.56, overlap_s=0.64, batch_size=3)
    waves = [make_tone(s, seed=i) for i, s in enumerate([0.4, 3.3, 11.9, 1.0, 7.05])]
    together = embedder.embed(waves)
    for wave, joint in zip(waves, together, strict=True):
        alone = embedder.embed([wave])[0]
        assert joint.timestamps.shape == alone.timestamps.shape
        assert (joint.scene - alone.scene).abs().max() <= 1e-4
        assert (joint.timestamps - alone.timestamps).abs().max() <= 1e-4
        torch.testing.assert_close(joint.timestamps_ms, alone.timestamps_ms)


def test_long_clip_is_stitched_from_chunk_centres(tiny_model, make_tone):
    embedder = Embedder(tiny_model, chunk_s=2.56, overlap_s=0.96)
    wave = make_tone(9.0)
    emb = embedder.embed([wave])[0]
    fe, spec = tiny_model.frontend, tiny_model.encoder.spec
    hop, win = fe.hop_length, fe.win_length  # one frontend frame
    n_frames = 1 + (len(wave) - win) // hop
    if spec.partial_last:
        assert emb.frames.shape[0] == math.ceil(n_frames / spec.stride)
    else:
        assert emb.frames.shape[0] == 1 + (n_frames - spec.receptive) // spec.stride
    # The frame at 4.0 s lies in the middle of some chunk; recompute that chunk by hand.
    token_hop = spec.stride * hop
    chunk_tokens = round(2.56 * SR / token_hop)
    step = chunk_tokens - round(0.96 * SR / token_hop)
    target = round(4.0 * SR / token_hop)
    total = emb.frames.shape[0]
    n_chunks = 1 + math.ceil((total - chunk_tokens) / step)
    starts = [round(k * (total - chunk_tokens) / (n_chunks - 1)) for k in range(n_chunks)]
    first = min(starts, key=lambda s: abs(target - (s + chunk_tokens / 2)))  # chunk centred nearest
    chunk_frames = (chunk_tokens - 1) * spec.stride + spec.receptive
    piece = wave[first * token_hop : first * token_hop + (chunk_frames - 1) * hop + win]
    by_hand = _direct_frames(tiny_model, piece)
    torch.testing.assert_close(emb.frames[target], by_hand[target - first], atol=1e-5, rtol=0)
    # timestamps: regular hop ≤ 50 ms, within the clip
    ts = emb.timestamps_ms
    diffs = ts[1:] - ts[:-1]
    assert diffs.max() - diffs.min() < 1.0 and diffs.max() <= 50.0
    assert ts[-1] <= 1000 * len(wave) / SR and ts[0] >= 0
    assert emb.timestamps.shape == (ts.shape[0], embedder.embedding_size)


def test_interpolated_timestamps_pass_through_frames(tiny_model, make_tone):
    emb = Embedder(tiny_model).embed([make_tone(3.0)])[0]
    # every native frame time is on the timestamp grid, with the native frame's embedding
    for i, t in enumerate(emb.frame_times_ms[:-1]):
        j = int(torch.argmin((emb.timestamps_ms - t).abs()))
        assert abs(float(emb.timestamps_ms[j] - t)) < 1e-6
        torch.testing.assert_close(emb.timestamps[j], emb.frames[i])


def test_layer_choices(tiny_model, make_tone):
    wave = make_tone(1.2)
    depth = tiny_model.encoder.spec.depth
    mean = Embedder(tiny_model, layer="mean").embed([wave])[0].frames
    per_layer = [_direct_frames(tiny_model, wave, layer=i) for i in range(depth + 1)]
    torch.testing.assert_close(mean, torch.stack(per_layer).mean(0), atol=1e-5, rtol=0)
    onehot = tuple(1.0 if i == 1 else 0.0 for i in range(depth + 1))
    weighted = Embedder(tiny_model, layer=onehot).embed([wave])[0].frames
    torch.testing.assert_close(weighted, per_layer[1], atol=1e-5, rtol=0)
    with pytest.raises(ConfigError, match="out of range"):
        Embedder(tiny_model, layer=depth + 5)
    with pytest.raises(ConfigError, match="weights"):
        Embedder(tiny_model, layer=(1.0, 2.0))


def test_concat_pooling_size(tiny_model, make_tone):
    embedder = Embedder(tiny_model, freq_pool="concat")
    spec = tiny_model.encoder.spec
    assert embedder.embedding_size == spec.freq_tokens * spec.width
    assert embedder.embed([make_tone(1.0)])[0].scene.shape == (embedder.embedding_size,)


def test_tiny_and_resampled_inputs(tiny_model, make_tone):
    embedder = Embedder(tiny_model)
    one = embedder.embed([np.zeros(1, np.float32)])[0]
    assert one.timestamps.shape[0] == 1 and float(one.timestamps_ms[0]) <= 1000 / SR
    wave8k = make_tone(2.0, sr=8000)
    from echoic.data.audio import resample

    a = embedder.embed([wave8k], sample_rate=8000)[0]
    b = embedder.embed([resample(wave8k, 8000, SR)])[0]
    torch.testing.assert_close(a.scene, b.scene)


def test_a_model_recommends_its_embedding_settings(tiny_model, make_tone, tmp_path):
    import echoic

    tiny_model.config.embed = {"layer": "mean", "freq_pool": "concat"}
    echoic.save(tiny_model, tmp_path / "m")
    loaded = echoic.load(tmp_path / "m")
    assert loaded.config.embed == {"layer": "mean", "freq_pool": "concat"}
    wave = make_tone(1.0)
    recommended = Embedder(loaded)
    assert recommended.config.layer == "mean" and recommended.config.freq_pool == "concat"
    explicit = Embedder(loaded, layer="mean", freq_pool="concat")
    assert torch.equal(
        torch.as_tensor(recommended.embed([wave])[0].scene),
        torch.as_tensor(explicit.embed([wave])[0].scene),
    )
    overridden = Embedder(loaded, layer=-1)  # the caller's choice wins, the rest stays
    assert overridden.config.layer == -1 and overridden.config.freq_pool == "concat"
    assert overridden.identity != recommended.identity


def test_shifted_passes_give_frames_centred_on_each_timestamp(tiny_model, make_tone):
    """shifts=k: frame t of pass j is the model's frame t of the clip without its first j/k patch."""
    wave = make_tone(2.3, seed=3)
    one, four = Embedder(tiny_model), Embedder(tiny_model, shifts=4)
    a, b = one.embed([wave])[0], four.embed([wave])[0]
    # scene and native frames are those of the unshifted pass (up to the float noise of batching it
    # with the shifted passes, which may carry padding); scene_embeddings runs that pass only
    torch.testing.assert_close(b.scene, a.scene, atol=1e-5, rtol=0)
    torch.testing.assert_close(b.frames, a.frames, atol=1e-5, rtol=0)
    torch.testing.assert_close(four.scene_embeddings([wave])[0], a.scene)
    assert four.timestamp_hop_ms == one.frame_hop_ms / 4
    token_hop = round(one.frame_hop_ms * SR / 1000)
    passes = [_direct_frames(tiny_model, wave[j * token_hop // 4 :]) for j in range(4)]
    n = min(p.shape[0] * 4 + j for j, p in enumerate(passes))
    centre = float(a.frame_times_ms[0]) + torch.arange(n) * one.frame_hop_ms / 4
    n = int((centre <= 1000 * len(wave) / SR).sum())  # centres past the clip's end are dropped
    assert n >= a.timestamps.shape[0]  # no fewer than the interpolated grid
    assert b.timestamps.shape == (n, four.embedding_size)
    for i in range(n):
        t, j = divmod(i, 4)
        torch.testing.assert_close(b.timestamps[i], passes[j][t], atol=1e-5, rtol=0)
    # a regular grid, frame_hop / 4 apart, starting at the first frame's centre, within the clip
    step = b.timestamps_ms[1:] - b.timestamps_ms[:-1]
    torch.testing.assert_close(step, torch.full_like(step, one.frame_hop_ms / 4))
    assert float(b.timestamps_ms[0]) == float(a.frame_times_ms[0])
    assert float(b.timestamps_ms[-1]) <= 1000 * len(wave) / SR
    # without shifts the in-between timestamps are interpolated, so they differ
    assert not torch.allclose(a.timestamps[1], b.timestamps[1], atol=1e-4)


def test_shifted_passes_batch_like_one_at_a_time(tiny_model, make_tone):
    embedder = Embedder(tiny_model, shifts=2, chunk_s=2.56, overlap_s=0.64, batch_size=3)
    waves = [make_tone(s, seed=i) for i, s in enumerate([0.05, 0.2, 3.1, 6.7])]
    together = embedder.embed(waves)
    for wave, joint in zip(waves, together, strict=True):
        alone = embedder.embed([wave])[0]
        assert joint.timestamps.shape == alone.timestamps.shape
        assert (joint.timestamps - alone.timestamps).abs().max() <= 1e-4
        assert float(alone.timestamps_ms[-1]) <= 1000 * len(wave) / SR


def test_shifts_are_checked_and_change_the_identity(tiny_model):
    base = Embedder(tiny_model)
    assert Embedder(tiny_model, shifts=1).identity == base.identity
    assert Embedder(tiny_model, shifts=4).identity != base.identity
    with pytest.raises(ConfigError, match="must divide"):
        Embedder(tiny_model, shifts=3)
    with pytest.raises(ConfigError, match="integer ≥ 1"):
        Embedder(tiny_model, shifts=0)
