"""logmel_stats, mfcc_stats and random_vit_tiny against independent references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.fft import dct
from scipy.signal import savgol_filter

from echoic.zoo.mfcc_stats import dct_matrix, deltas, mfcc_from_logmel
from echoic.zoo.stats import window_means


@pytest.mark.parametrize(("n_out", "n_in"), [(20, 40), (13, 13), (1, 7)])
def test_dct_matrix_is_scipy_orthonormal_dct2(n_out, n_in):
    x = np.random.default_rng(0).standard_normal((n_in, 5))
    ours = (dct_matrix(n_out, n_in) @ torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, dct(x, type=2, norm="ortho", axis=0)[:n_out], atol=1e-12)
    logmel = torch.from_numpy(x[None]).float()
    assert mfcc_from_logmel(logmel, n_out).shape == (1, n_out, 5)


@pytest.mark.parametrize(("width", "frames"), [(2, 30), (1, 4), (3, 2)])
def test_deltas_are_htk_regression_with_repeated_edges(width, frames):
    x = np.random.default_rng(1).standard_normal((3, frames))
    ours = deltas(torch.from_numpy(x), width).numpy()
    # least-squares slope over 2N+1 frames, edges repeated = the HTK delta formula
    ref = savgol_filter(x, 2 * width + 1, 1, deriv=1, axis=-1, mode="nearest")
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_window_means_match_a_loop():
    values = torch.from_numpy(np.random.default_rng(2).standard_normal((23, 3)))
    centres = torch.tensor([0, 4, 11, 22])
    got = window_means(values, centres, 5)
    for row, c in zip(got, centres.tolist(), strict=True):
        ref = values[max(0, c - 5) : min(23, c + 6)].mean(0)
        torch.testing.assert_close(row, ref)


def test_logmel_stats_are_mean_and_std_of_each_band(zoo_model, clip_factory):
    model = zoo_model("logmel_stats")
    clip = clip_factory(2.0, 16000, 3)
    emb = model.embed([clip])[0]
    feats = model.features(clip).numpy().astype(np.float64)  # (T, 64)
    assert feats.shape == (1 + (32000 - 400) // 160, 64)
    ref = np.concatenate([feats.mean(0), feats.std(0)])
    np.testing.assert_allclose(emb.scene.numpy(), ref, rtol=1e-5, atol=1e-4)
    # frame k: 250 ms (12 frames either side) around feature frame 4k
    k = 10
    window = feats[4 * k - 12 : 4 * k + 13]
    ref_k = np.concatenate([window.mean(0), window.std(0)])
    np.testing.assert_allclose(emb.frames[k].numpy(), ref_k, rtol=1e-5, atol=1e-4)
    assert float(emb.frame_times_ms[k] - emb.frame_times_ms[0]) == pytest.approx(400.0)
    louder = model.embed([clip * 4])[0].scene
    strong = emb.scene[:64] > 0  # bands far above the 1e-6 log offset: power x16 = + ln 16
    assert int(strong.sum()) >= 5
    shift = (louder[:64] - emb.scene[:64])[strong]
    torch.testing.assert_close(shift, torch.full_like(shift, 2 * np.log(4)), atol=1e-2, rtol=0)


def test_logmel_stats_per_channel_are_each_channels_statistics(zoo_model, clip_factory):
    mono = zoo_model("logmel_stats")
    model = zoo_model("logmel_stats_2ch")
    assert model.channels == 2 and model.embedding_size == 256
    left = clip_factory(1.5, 16000, 4)
    right = 0.5 * clip_factory(1.5, 16000, 4)  # the same sound, 6 dB quieter on the right
    emb = model.embed([np.stack([left, right])])[0]
    by_channel = [mono.embed([x])[0].scene for x in (left, right)]
    expected = torch.cat(
        [by_channel[0][:64], by_channel[1][:64], by_channel[0][64:], by_channel[1][64:]]
    )
    torch.testing.assert_close(emb.scene, expected, atol=1e-4, rtol=1e-5)
    strong = emb.scene[:64] > 0  # bands far above the log offset: power x1/4 = - ln 4
    assert int(strong.sum()) >= 5
    shift = (emb.scene[64:128] - emb.scene[:64])[strong]
    torch.testing.assert_close(shift, torch.full_like(shift, -2 * np.log(2)), atol=1e-2, rtol=0)
    assert model.identity.startswith("logmel_stats_2ch-") and model.identity != mono.identity
    with pytest.raises(ValueError, match="2-channel audio"):
        model.embed([left])  # a mono clip: the model says how to feed it


def test_mfcc_stats_against_scipy(zoo_model, clip_factory):
    model = zoo_model("mfcc_stats")
    clip = clip_factory(1.5, 16000, 4)
    logmel = model.features(clip).numpy().astype(np.float64).T  # (40, T)
    c = dct(logmel, type=2, norm="ortho", axis=0)[:20]
    d1 = savgol_filter(c, 5, 1, deriv=1, axis=-1, mode="nearest")
    d2 = savgol_filter(d1, 5, 1, deriv=1, axis=-1, mode="nearest")
    feats = np.concatenate([c, d1, d2]).T
    ref = np.concatenate([feats.mean(0), feats.std(0)])
    got = model.embed([clip])[0].scene.numpy()
    assert got.shape == (120,)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-3)


def test_random_vit_tiny_is_its_own_fixed_seed(zoo_model):
    from echoic.checkpoint import load
    from echoic.zoo.random_vit_tiny import RANDOM_VIT_SEED, random_vit_model

    model = zoo_model("random_vit_tiny")
    assert RANDOM_VIT_SEED == 1 and "UNTRAINED" in model.label
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    again = random_vit_model()
    torch.testing.assert_close(torch.rand(3), expected_next)  # global RNG untouched
    state, default_state = again.state_dict(), load("echoic-untrained-tiny").state_dict()
    for name, tensor in model.model.state_dict().items():
        torch.testing.assert_close(state[name], tensor)
    weight = "encoder.patch_embed.proj.weight"
    weight = weight if weight in state else next(k for k in state if k.endswith("weight"))
    # not echoic-untrained-tiny (seed 0)
    assert not torch.equal(state[weight], default_state[weight])
