"""Token metrics (purity, NMI, bags) and the frame helpers, against hand counts and outside
references (scipy's DCT, librosa's deltas)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from echoic.tokenizers.frames import mfcc, mfcc_frames, stacked_frames
from echoic.tokenizers.metrics import bag_scores, clip_histograms, frame_scores, purity


def test_purity_by_hand() -> None:
    clusters = np.array([0, 0, 0, 1, 1, 2])
    labels = np.array(["a", "a", "b", "b", "b", "a"])
    # cluster 0: 2 of a; cluster 1: 2 of b; cluster 2: 1 of a → 5 / 6
    assert purity(clusters, labels) == pytest.approx(5 / 6)


def test_frame_scores_extremes() -> None:
    labels = [0, 1, 2, 0]
    informative = [np.full((1, 5), y) for y in labels]  # tokens = the clip's label
    assert frame_scores(informative, labels)["nmi"] == pytest.approx(1.0)
    assert frame_scores(informative, labels)["nmi_shuffled"] < 0.5  # the chance level
    assert frame_scores(informative, labels)["purity"] == pytest.approx(1.0)
    same = [np.zeros((2, 5), np.int64) for _ in labels]  # one token everywhere
    scores = frame_scores(same, labels)
    assert scores["nmi"] == pytest.approx(0.0, abs=1e-12) and scores["frames"] == 20
    assert scores["purity"] == pytest.approx(10 / 20)  # the most frequent label (0) of 20


def test_histograms_and_bags() -> None:
    ids = [np.array([[0, 0, 1, 1], [2, 2, 2, 0]]), np.array([[1, 1, 1, 1], [0, 0, 0, 0]])]
    hist = clip_histograms(ids, (2, 3))
    np.testing.assert_allclose(hist, [[0.5, 0.5, 0.25, 0, 0.75], [0, 1, 1, 0, 0]])
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 10)
    clip_ids = [rng.integers(4 * y, 4 * y + 4, size=(1, 20)) for y in labels]  # label-specific
    scores = bag_scores(clip_histograms(clip_ids, (12,)), labels, seed=0)
    assert scores["nmi"] == pytest.approx(1.0) and scores["purity"] == pytest.approx(1.0)


def test_stacked_frames_flattens_each_time_step() -> None:
    values = torch.arange(2 * 3 * 7, dtype=torch.float32).reshape(2, 3, 7)  # (B, F, T)
    out = stacked_frames(values, stride=2, receptive=3)
    assert out.shape == (2, 4, 9)  # ceil(7 / 2) steps of 3 frames × 3 bins
    torch.testing.assert_close(out[1, 1], values[1, :, 2:5].T.reshape(-1))
    torch.testing.assert_close(out[0, 3], torch.cat([values[0, :, 6], torch.zeros(6)]))


def test_mfcc_matches_scipy_dct_and_librosa_deltas() -> None:
    scipy_fft = pytest.importorskip("scipy.fft")
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    logmel = rng.standard_normal((1, 40, 50))
    out = mfcc(torch.from_numpy(logmel), n_mfcc=13).numpy()[0]
    coefficients = scipy_fft.dct(logmel[0], type=2, norm="ortho", axis=0)[:13]
    np.testing.assert_allclose(out[:13], coefficients, atol=1e-10)
    first = librosa.feature.delta(coefficients, width=5, order=1, axis=-1, mode="nearest")
    np.testing.assert_allclose(out[13:26], first, atol=1e-8)
    second = librosa.feature.delta(first, width=5, order=1, axis=-1, mode="nearest")
    np.testing.assert_allclose(out[26:], second, atol=1e-8)
    steps = mfcc_frames(torch.from_numpy(logmel), stride=5, receptive=5).numpy()[0]
    np.testing.assert_allclose(steps[2], out[:, 10:15].mean(1), atol=1e-10)
