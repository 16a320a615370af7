"""Zoo fixtures: one built model per name per session, a tiny fitted bow and bag_of_tokens,
peer skipping rules.

A peer whose optional extra is missing is skipped with its one-line reason — unless
``ECHOIC_REQUIRE_PEERS=1`` (the CI step that installs the ``peers`` extra), where it fails.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

_MODELS: dict[str, object] = {}


def require_available(name: str) -> None:
    """Skip (or fail under ECHOIC_REQUIRE_PEERS=1, unless its weights are a download: a public
    ``converted`` card) when model card ``name`` cannot run here."""
    from echoic.cards import CARDS

    card = CARDS.get(name)
    reason = card.unavailable_reason()
    if reason:
        # public checkpoints' weights are downloaded, never installed by the peers extra
        if os.environ.get("ECHOIC_REQUIRE_PEERS") == "1" and card.kind != "converted":
            pytest.fail(f"ECHOIC_REQUIRE_PEERS=1 but {reason}")
        pytest.skip(reason)


def synthetic_clip(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    """A gliding harmonic tone with noise bursts: float32 in [-1, 1], deterministic."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    freq = 150.0 + 250.0 * t / max(seconds, 1e-3) + 20.0 * seed
    phase = 2 * np.pi * np.cumsum(freq) / sr
    tone = 0.3 * np.sin(phase) + 0.1 * np.sin(2 * phase) + 0.05 * np.sin(3 * phase)
    bursts = (np.sin(2 * np.pi * 3.0 * t) > 0.6) * rng.standard_normal(t.shape) * 0.1
    return (tone + bursts).astype(np.float32)


@pytest.fixture(scope="session")
def require_peer():
    """``require_peer(name)``: skip, or fail under ECHOIC_REQUIRE_PEERS=1, when unavailable."""
    return require_available


@pytest.fixture(scope="session")
def clip_factory():
    """``clip_factory(seconds, sr, seed=0)`` → a deterministic float32 test clip."""
    return synthetic_clip


@pytest.fixture(scope="session")
def bow_dir(tmp_path_factory):
    """A bow model fit on a few seconds of synthetic audio (small codebooks), saved."""
    from echoic.zoo.bow import BowConfig, save_bow
    from echoic.zoo.bow_fit import BowFitConfig, fit_bow_clips

    clips = [synthetic_clip(1.5, 16000, seed) for seed in range(3)]
    config = BowConfig(patch_frames=(3, 12), codebook_sizes=(8, 6), hidden=32, bottleneck=8)
    fit = BowFitConfig(epochs=2, max_patches=2000, kmeans_iterations=20, seed=0)
    path = tmp_path_factory.mktemp("bow")
    save_bow(fit_bow_clips(clips, config, fit), path)
    return path


@pytest.fixture(scope="session")
def token_dir(tmp_path_factory, tiny_model_factory):
    """A bag_of_tokens directory: k-means (12 clusters) of a tiny untrained model's frames."""
    from echoic.checkpoint import save
    from echoic.embed.token_frames import FrameSource
    from echoic.tokenizers import build_tokenizer
    from echoic.zoo.bag_of_tokens import write_model_config

    model_dir = save(tiny_model_factory(), tmp_path_factory.mktemp("tiny"))
    source = FrameSource(str(model_dir))
    clips = [synthetic_clip(1.5, 16000, seed) for seed in range(3)]
    frames = [c.inputs for c in source.frames(clips)]
    tokenizer = build_tokenizer("kmeans", frames[0].shape[1], {"n_clusters": 12})
    tokenizer.fit(frames)
    tokenizer.source = source.describe()
    path = tmp_path_factory.mktemp("tokens")
    tokenizer.save(path)
    write_model_config(path, tokenizer)
    return path


@pytest.fixture(scope="session")
def fitted_dirs(bow_dir, token_dir):
    """Zoo names that need a fitted directory → theirs (the fixtures above)."""
    return {"bow": bow_dir, "bag_of_tokens": token_dir}


@pytest.fixture(scope="session")
def zoo_model(fitted_dirs):
    """``zoo_model(name)`` → the built model (built once per session; peers skip if missing)."""
    from echoic.zoo.registry import resolve_model

    def get(name: str):
        require_available(name)
        if name not in _MODELS:
            _MODELS[name] = resolve_model(fitted_dirs.get(name, name))
        return _MODELS[name]

    return get
