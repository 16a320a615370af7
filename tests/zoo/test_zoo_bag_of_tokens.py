"""bag_of_tokens: a fitted tokenizer directory is a model whose scene embedding is the clip's
token histogram."""

from __future__ import annotations

import numpy as np
import pytest

from echoic.cards import find_card
from echoic.tokenizers.metrics import clip_histograms
from echoic.zoo.registry import ModelUnavailable, resolve_model


def test_scene_is_the_token_histogram(token_dir, zoo_model, clip_factory):
    model = zoo_model("bag_of_tokens")
    card = find_card(token_dir)
    assert card.kind == "baseline" and card.embedding_size == 12 == model.embedding_size
    clip = clip_factory(2.0, model.sample_rate, 7)
    frames = model.source.frames([clip])[0].inputs
    ids = model.tokenizer(frames[None])[0].numpy().T  # (codebooks, T)
    expected = clip_histograms([ids], model.tokenizer.codebook_sizes)[0]
    emb = model.embed([clip])[0]
    np.testing.assert_allclose(emb.scene.numpy(), expected, atol=1e-6)
    assert emb.frames.shape == (ids.shape[1], 12)
    np.testing.assert_allclose(emb.frames.sum(1).numpy(), 1.0, atol=1e-6)  # one codebook


def test_needs_a_tokenizer_directory():
    with pytest.raises(ModelUnavailable, match="echoic tokenizer fit"):
        resolve_model("bag_of_tokens")
