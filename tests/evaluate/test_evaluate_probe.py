"""The vectorised probe trainer: learns separable data, stays at chance on shuffled labels, and
trains every probe exactly as a plain torch.nn + torch.optim.Adam loop would."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from echoic.evaluate.fit import FitConfig, fit_probes
from echoic.evaluate.knn import knn_probabilities
from echoic.evaluate.metrics import top1_acc_batched
from echoic.evaluate.mlp import ProbeSpec
from echoic.evaluate.probes import ProbeConfig, hear_grid

C, D = 6, 24


def blobs(n: int, rng: np.random.Generator, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, C, n)
    return (centres[y] + 0.7 * rng.normal(size=(n, D))).astype(np.float32), y


def scorer_for(y: np.ndarray):
    onehot = np.eye(C)[y]
    return lambda probs: (top1_acc_batched(probs, onehot), [None] * len(probs))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(C, D)) * 1.5
    return [blobs(n, rng, centres) for n in (480, 160, 240)]


CFG = FitConfig(batch_size=128, max_epochs=45, check_every=3, patience=4)
GRID = [
    ProbeSpec(hidden_layers=h, hidden_dim=48, lr=lr, init=init, seed=s)
    for h, lr, init, s in [
        (1, 3.2e-3, "xavier_uniform", 0),
        (1, 1e-4, "xavier_normal", 1),
        (2, 1e-3, "xavier_normal", 0),
        (2, 1e-4, "xavier_uniform", 2),
    ]
]


def test_separable_problem_reaches_full_accuracy(data) -> None:
    (xt, yt), (xv, yv), (xs, ys) = data
    result = fit_probes(GRID, xt, yt, xv, scorer_for(yv), "top1_acc", C, False, CFG)
    test = top1_acc_batched(result.predict(xs, False), np.eye(C)[ys])
    assert result.best_score.max() >= 0.99
    assert test.max() >= 0.99
    assert test[0] >= 0.99  # the fastest learning rate gets there within the budget


def test_shuffled_labels_stay_at_chance(data) -> None:
    (xt, yt), (xv, yv), (xs, ys) = data
    rng = np.random.default_rng(1)
    shuffled = rng.permutation(yt)
    result = fit_probes(GRID, xt, shuffled, xv, scorer_for(yv), "top1_acc", C, False, CFG)
    test = top1_acc_batched(result.predict(xs, False), np.eye(C)[ys])
    # chance is 1/6; 240 test clips give a binomial std of 0.024
    assert np.all(np.abs(test - 1 / C) < 0.1), test


@pytest.mark.parametrize("batch_norm", [False, True])
def test_stacked_probes_equal_one_by_one_torch_nn_training(data, batch_norm: bool) -> None:
    """Training the grid together must give each probe what torch.nn.Sequential (nn.Dropout,
    nn.BatchNorm1d) + torch.optim.Adam give it alone — dropout masks and early stopping (at
    different epochs) included. With BatchNorm, the Linear bias in front of it has a zero gradient
    up to rounding noise, which Adam turns into lr-sized steps in both versions alike; that moves
    test probabilities by up to ~1e-3, so the tolerance is wider there."""
    (xt, yt), (xv, yv), (xs, _) = data
    specs = [ProbeSpec(**{**s.__dict__, "batch_norm": batch_norm}) for s in GRID]
    assert all(s.dropout == 0.1 for s in specs)
    args = (xt, yt, xv, scorer_for(yv), "top1_acc", C, False, CFG)
    stacked = fit_probes(specs, *args, backend="stacked")
    alone = fit_probes(specs, *args, backend="sequential")
    assert stacked.best_epoch.tolist() == alone.best_epoch.tolist()
    assert stacked.epochs_run.tolist() == alone.epochs_run.tolist()
    assert len(set(stacked.epochs_run.tolist())) > 1  # probes really stopped at different times
    np.testing.assert_allclose(stacked.best_score, alone.best_score)
    atol = 3e-3 if batch_norm else 2e-6
    np.testing.assert_allclose(stacked.predict(xs, False), alone.predict(xs, False), atol=atol)


def test_a_probe_does_not_depend_on_its_stack_mates(data) -> None:
    """Same probe, trained in two different stacks: same result (own init, masks, updates)."""
    (xt, yt), (xv, yv), (xs, _) = data
    specs = [ProbeSpec(**{**s.__dict__, "batch_norm": False}) for s in GRID]
    args = (xt, yt, xv, scorer_for(yv), "top1_acc", C, False, CFG)
    full = fit_probes(specs, *args)
    part = fit_probes([specs[3], specs[1]], *args)
    np.testing.assert_allclose(full.predict(xs, False)[[3, 1]], part.predict(xs, False), atol=2e-6)


def test_hear_grid_is_hear_eval_kits_choice() -> None:
    """hear-eval-kit: ParameterGrid over its grid, seed_everything(42), random.shuffle, first 8."""
    sklearn = pytest.importorskip("sklearn.model_selection")
    grid = sklearn.ParameterGrid(
        {
            "hidden_layers": [1, 2],
            "initialization": ["xavier_uniform", "xavier_normal"],
            "lr": [3.2e-3, 1e-3, 3.2e-4, 1e-4],
            "dropout": [0.1],
            "batch_size": [1024],
        }
    )
    confs = [{k: c[k] for k in ("hidden_layers", "initialization", "lr")} for c in grid]
    random.seed(42)
    random.shuffle(confs)
    assert hear_grid(ProbeConfig()) == confs[:8]


def test_knn_votes_by_cosine_neighbours() -> None:
    train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [-1.0, 0.0]], np.float32)
    targets = np.eye(3, dtype=np.float32)[[0, 0, 1, 1, 2]]
    query = np.array([[10.0, 0.5], [0.2, 3.0]], np.float32)  # scale must not matter (cosine)
    probs = knn_probabilities(train, targets, query, k=3, temperature=0.07)
    assert probs.argmax(1).tolist() == [0, 1]
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-6)
    assert probs[0, 2] == 0.0  # the opposite vector is not among the 3 nearest


def test_fixed_order_shuffles_files_within_each_split_and_keeps_frames_together() -> None:
    from echoic.evaluate.fit import training_order

    offsets = np.array([0, 3, 5, 9, 10, 12])  # 5 files of 3, 2, 4, 1, 2 frames
    split = np.array([0, 0, 0, 1, 1])
    order = training_order(12, offsets, np.random.default_rng(0), split)
    assert sorted(order.tolist()) == list(range(12))
    assert set(order[:9].tolist()) == set(range(9))  # split 0 first
    position = np.argsort(order)
    for a, b in itertools.pairwise(offsets):  # each file's frames in one piece
        assert np.all(np.diff(position[a:b]) == 1)
    rows = training_order(6, None, np.random.default_rng(0), np.array([1, 1, 0, 0, 0, 1]))
    assert set(rows[:3].tolist()) == {2, 3, 4} and set(rows[3:].tolist()) == {0, 1, 5}
