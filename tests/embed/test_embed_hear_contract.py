"""The HEAR 2021 contract, checked without hearvalidator (which needs TensorFlow)."""

import numpy as np
import pytest
import torch

import echoic.hear as hear
from echoic.checkpoint import save

CASES = [(encoder, shifts) for encoder in ("vit_test", "wav_test") for shifts in (1, 4)]


@pytest.fixture(scope="module", params=CASES, ids=[f"{e}-shifts{k}" for e, k in CASES])
def model(request, tmp_path_factory, tiny_model_factory):
    """Every encoder family, saved as a model directory and loaded as HEAR's harness does."""
    encoder, shifts = request.param
    path = tmp_path_factory.mktemp("m")
    save(tiny_model_factory(encoder=encoder), path)
    return hear.load_model(str(path), shifts=shifts)


def test_model_attributes(model):
    assert isinstance(model, torch.nn.Module)
    assert model.sample_rate == 16000
    assert isinstance(model.scene_embedding_size, int) and model.scene_embedding_size > 0
    assert isinstance(model.timestamp_embedding_size, int)


@pytest.mark.parametrize("seconds", [0.05, 1.0, 4.2, 12.0])
def test_timestamp_embeddings_contract(model, seconds):
    n = int(seconds * model.sample_rate)
    audio = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (3, n)).astype(np.float32))
    emb, ts = hear.get_timestamp_embeddings(audio, model)
    assert emb.dtype == torch.float32 and ts.dtype == torch.float32
    assert emb.ndim == 3 and emb.shape[0] == 3 and emb.shape[2] == model.timestamp_embedding_size
    assert ts.shape == emb.shape[:2]
    assert torch.all(ts[:, -1] <= 1000 * seconds + 1e-3)
    if ts.shape[1] > 1:
        hops = ts[:, 1:] - ts[:, :-1]
        assert float(hops.max() - hops.min()) < 1.0  # regular within 1 ms
        assert float(hops.max()) <= 50.0
    assert torch.isfinite(emb).all()


def test_scene_embeddings_contract(model):
    audio = torch.rand(4, 16000) * 2 - 1
    emb = hear.get_scene_embeddings(audio, model)
    assert emb.shape == (4, model.scene_embedding_size) and emb.dtype == torch.float32
    # deterministic, and each sound independent of the others in its batch
    again = hear.get_scene_embeddings(audio[2:3], model)
    torch.testing.assert_close(emb[2:3], again, atol=1e-5, rtol=0)


def test_rejects_wrong_shape(model):
    with pytest.raises(ValueError, match="n_sounds, n_samples"):
        hear.get_scene_embeddings(torch.zeros(16000), model)


def test_default_model_loads_without_path():
    m = hear.load_model("")  # the bundled echoic-small: 2,048-d CNN frames, mean + max scenes
    assert m.sample_rate == 16000 and m.scene_embedding_size == 2048
    assert m.timestamp_embedding_size == 2048
    tiny = hear.load_model("echoic-tiny")  # by name, with its recommended frequency concat
    assert tiny.scene_embedding_size == tiny.timestamp_embedding_size == 8 * 192
