"""bow: fitting, histogram embeddings, the checkpoint round trip, k-means against scikit-learn."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from echoic.checkpoint import CONFIG_FILE, WEIGHTS_FILE, read_config
from echoic.zoo.bow import BowConfig, load_bow, patches
from echoic.zoo.bow_fit import BowFitConfig, fit_bow_clips, kmeans
from echoic.zoo.registry import ModelUnavailable, entry_for_directory, resolve_model


def test_patches_are_centred_with_repeated_edges():
    x = torch.arange(5.0)[:, None] * torch.tensor([[1.0, 10.0]])  # (T=5, F=2)
    got = patches(x, 3)
    assert got.shape == (5, 6)
    # frame 0: frames (0, 0, 1) — the missing left neighbour repeats frame 0
    torch.testing.assert_close(got[0], torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0, 10.0]))
    torch.testing.assert_close(got[2], torch.tensor([1.0, 10.0, 2.0, 20.0, 3.0, 30.0]))
    torch.testing.assert_close(got[4], torch.tensor([3.0, 30.0, 4.0, 40.0, 4.0, 40.0]))


def test_kmeans_matches_scikit_learn_on_blobs():
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(0)
    centres = rng.uniform(-10, 10, (6, 4))
    points = np.concatenate([c + 0.3 * rng.standard_normal((200, 4)) for c in centres])
    ours = kmeans(torch.from_numpy(points).float(), 6, 50, torch.Generator().manual_seed(0))
    ref = KMeans(6, n_init=5, random_state=0).fit(points)

    def inertia(c: np.ndarray) -> float:
        return float(((points[:, None] - c[None]) ** 2).sum(-1).min(1).sum())

    assert inertia(ours.numpy()) == pytest.approx(inertia(ref.cluster_centers_), rel=1e-3)
    with pytest.raises(Exception, match="at least k=6"):
        kmeans(torch.zeros(3, 2), 6, 5, torch.Generator())


def test_histograms_sum_to_one_per_scale(zoo_model, clip_factory):
    model = zoo_model("bow")
    assert model.embedding_size == 8 + 6
    emb = model.embed([clip_factory(1.2, 16000, 9)])[0]
    for vectors in (emb.scene[None], emb.frames):
        torch.testing.assert_close(vectors[:, :8].sum(1), torch.ones(len(vectors)))
        torch.testing.assert_close(vectors[:, 8:].sum(1), torch.ones(len(vectors)))
        assert bool((vectors >= 0).all())
    # the scene histogram counts every frame's word once
    words = model.net.words(model.net.normalise(model.features(clip_factory(1.2, 16000, 9))))
    counts = torch.bincount(words[0], minlength=8).float()
    torch.testing.assert_close(emb.scene[:8], counts / counts.sum())


def test_fit_is_deterministic_and_content_dependent(clip_factory):
    clips = [clip_factory(1.0, 16000, s) for s in range(2)]
    config = BowConfig(patch_frames=(2, 6), codebook_sizes=(4, 4), hidden=16, bottleneck=4)
    fit = BowFitConfig(epochs=1, max_patches=500, kmeans_iterations=10, seed=3)
    a, b = fit_bow_clips(clips, config, fit), fit_bow_clips(clips, config, fit)
    assert a.identity == b.identity
    other = fit_bow_clips(clips, config, BowFitConfig(epochs=1, max_patches=500, seed=4))
    assert other.identity != a.identity


def test_directory_round_trip_and_resolution(bow_dir, zoo_model, clip_factory):
    assert (bow_dir / WEIGHTS_FILE).is_file() and (bow_dir / CONFIG_FILE).is_file()
    raw = json.loads((bow_dir / CONFIG_FILE).read_text())
    assert raw["format_version"] == 1 and raw["model"]["encoder"] == "bow"
    assert read_config(bow_dir).encoder_config["codebook_sizes"] == [8, 6]
    assert entry_for_directory(bow_dir).name == "bow"
    clip = clip_factory(0.8, 16000, 11)
    first = zoo_model("bow").embed([clip])[0]
    by_name = resolve_model("bow", path=bow_dir).embed([clip])[0]
    torch.testing.assert_close(first.scene, by_name.scene)
    torch.testing.assert_close(first.timestamps, by_name.timestamps)
    assert load_bow(bow_dir).identity == zoo_model("bow").identity
    with pytest.raises(ModelUnavailable, match="echoic fit-bow"):
        resolve_model("bow")
    with pytest.raises(Exception, match="not allowed"):
        load_bow(bow_dir, codebook_sizes=(3, 3))


def test_fit_bow_cli_writes_a_model_directory(tmp_path, clip_factory, capsys):
    from echoic.cli.main import main

    audio = tmp_path / "audio"
    audio.mkdir()
    for seed in range(3):
        sf.write(audio / f"c{seed}.wav", clip_factory(1.0, 22050, seed), 22050)
    out = tmp_path / "model"
    argv = ["fit-bow", "--audio", str(audio), "--out", str(out), "--epochs", "1"]
    argv += ["--codebook-sizes", "4,4", "--patch-frames", "2,8", "--max-patches", "500"]
    assert main([*argv, "--quiet", "--threads", "1"]) == 0
    assert "wrote" in capsys.readouterr().out
    config = read_config(out)
    assert config.provenance["n_files"] == 3 and config.data_hash
    model = resolve_model(out)
    assert model.embedding_size == 8
    assert model.embed([clip_factory(0.5, 16000, 5)])[0].scene.shape == (8,)
