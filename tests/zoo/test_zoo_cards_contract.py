"""The model card contract, on every registered card: its fields are filled, and what it declares
without building (sample rate, embedding size, layer sizes) is what the built model gives.

Peers missing their optional packages are skipped with their install hint (failed under
``ECHOIC_REQUIRE_PEERS=1``); ``bow`` is checked on a fitted directory's card.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from echoic.cards import CARDS, ECHOIC_KINDS, KINDS, find_card
from echoic.data.batch import pad_batch
from echoic.embed.embedder import EmbedConfig

NAMES = CARDS.names()


def test_every_kind_and_the_builtin_names_are_registered():
    assert {"echoic-default", "echoic-tiny", "echoic-untrained-tiny", "logmel_stats", "bow"} <= set(
        NAMES
    )
    assert {card.kind for _, card in CARDS.items()} == set(KINDS)  # converted: echoic.zoo.public


@pytest.mark.parametrize("name", NAMES)
def test_card_fields_are_filled(name):
    card = CARDS.get(name)
    assert card.name == name and card.kind in KINDS
    assert card.licence and card.architecture and card.notes and card.origin.source
    assert isinstance(card.sample_rate, int) and card.sample_rate > 0
    assert isinstance(card.embedding_size, int) and card.embedding_size > 0
    if card.layer_sizes is not None:
        assert card.layer_sizes and all(isinstance(n, int) and n > 0 for n in card.layer_sizes)
    if card.kind == "peer":
        assert card.requires and card.install  # an install hint for when it is missing
        assert card.origin.package_file  # the weights file inside the package
    if card.kind in ECHOIC_KINDS:
        assert card.layer_sizes is not None
        if card.origin.path is not None:  # a weights file: its digest is known
            assert re.fullmatch(r"[0-9a-f]{64}", card.origin.sha256 or "")
    reason = card.unavailable_reason()
    assert reason is None or ("\n" not in reason and card.install in reason)


@pytest.mark.parametrize("name", NAMES)
def test_card_matches_the_built_model(name, zoo_model, fitted_dirs, require_peer):
    require_peer(name)
    # bow, bag_of_tokens: the card of a fitted directory
    card = find_card(fitted_dirs[name]) if name in fitted_dirs else CARDS.get(name)
    model = zoo_model(name)  # what resolve_model builds (an Embedder for echoic models)
    assert model.sample_rate == card.sample_rate
    assert model.embedding_size == card.embedding_size
    assert getattr(model, "channels", 1) == card.channels
    shape = (
        (card.sample_rate // 2,) if card.channels == 1 else (card.channels, card.sample_rate // 2)
    )
    clip = np.zeros(shape, np.float32)
    assert model.embed([clip])[0].scene.shape == (card.embedding_size,)
    if card.layer_sizes is not None:  # echoic models and random_vit_tiny: an Embedder
        batch = pad_batch([torch.from_numpy(clip)], card.sample_rate)
        with torch.no_grad():
            layers = model.model(batch).layers
        assert card.layer_sizes is not None and len(layers) == len(card.layer_sizes)


def test_declared_default_pooling_is_the_embedders():
    from echoic.checkpoint import DEFAULT_FREQ_POOL

    assert EmbedConfig().freq_pool == DEFAULT_FREQ_POOL


def test_load_accepts_a_fitted_bow_directory(bow_dir, clip_factory):
    import echoic
    from echoic.zoo.bow import BowModel

    card = find_card(bow_dir)
    assert card.kind == "baseline" and card.name == str(bow_dir) and card.embedding_size == 8 + 6
    assert card.origin.path == str(bow_dir / "model.safetensors") and card.origin.sha256
    model = echoic.load(bow_dir)
    assert isinstance(model, BowModel) and model.embedding_size == card.embedding_size
    assert model.embed([clip_factory(0.5, 16000)])[0].scene.shape == (14,)
