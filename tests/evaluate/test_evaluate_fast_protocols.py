"""The cheaper MLP protocols: ``hear-fast`` (grid on one seed with successive halving) and
``xares`` (X-ARES 0.1.3's LayerNorm + Linear, 10 epochs, cosine lr), the cosine schedule itself,
and re-seeded runs (``first_seed``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from evaluate_helpers import BandEnergyModel

from echoic.evaluate import EvalConfig, ProbeConfig, evaluate
from echoic.evaluate.fit import FitConfig, fit_probes, lr_factor
from echoic.evaluate.mlp import ProbeSpec
from echoic.evaluate.probes import XARES_POINT, _row_normalise


def _run(task: Path, out: Path, **probe) -> dict:
    [rec] = evaluate(
        [BandEnergyModel()],
        [task],
        EvalConfig(out=out, probe=ProbeConfig(**probe), progress=False, report=False),
        log=lambda _: None,
    )
    return rec


def test_cosine_schedule_matches_ignites_cosine_annealing() -> None:
    """ignite's CosineAnnealingScheduler(start lr, end 0.1 lr, cycle 10) stepped at each epoch
    start: lr_e = end + (start - end) / 2 * (1 + cos(pi * e / 10))."""
    cfg = FitConfig(max_epochs=10, lr_schedule="cosine", lr_floor=0.1)
    got = [lr_factor(cfg, e) for e in range(10)]
    want = [0.1 + 0.9 / 2 * (1 + math.cos(math.pi * e / 10)) for e in range(10)]
    np.testing.assert_allclose(got, want)
    assert got[0] == 1.0 and got[5] == pytest.approx(0.55) and got[-1] > 0.1
    assert lr_factor(FitConfig(), 7) == 1.0
    with pytest.raises(Exception, match="lr_schedule must be"):
        lr_factor(FitConfig(lr_schedule="step"), 0)


def test_stacked_and_torch_nn_probes_follow_the_same_schedule() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 12)) * 1.5
    y = rng.integers(0, 4, 300)
    x = (centres[y] + rng.normal(size=(300, 12))).astype(np.float32)
    onehot = np.eye(4)[y[200:]]

    def score(probs):
        return (probs.argmax(-1) == onehot.argmax(-1)).mean(1), [None] * len(probs)

    specs = [
        ProbeSpec(hidden_layers=0, lr=lr, init="torch_default", seed=s)
        for lr, s in ((1e-2, 0), (3e-3, 1))
    ]
    cfg = FitConfig(
        batch_size=32, max_epochs=6, check_every=1, patience=6, order="epoch", lr_schedule="cosine"
    )
    args = (x[:200], y[:200], x[200:], score, "top1_acc", 4, False, cfg)
    stacked = fit_probes(specs, *args, backend="stacked")
    alone = fit_probes(specs, *args, backend="sequential")
    np.testing.assert_allclose(stacked.predict(x, False), alone.predict(x, False), atol=2e-6)
    constant = fit_probes(
        specs, *args[:-1], FitConfig(**{**cfg.__dict__, "lr_schedule": "constant"})
    )
    assert not np.allclose(stacked.predict(x, False), constant.predict(x, False), atol=1e-4)


def test_row_normalise_is_layernorm_without_affine() -> None:
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).normal(3.0, 2.0, size=(5, 17)).astype(np.float32)
    ref = torch.nn.functional.layer_norm(torch.from_numpy(x), (17,), eps=1e-5).numpy()
    np.testing.assert_allclose(_row_normalise(x), ref, atol=1e-5)


@pytest.mark.parametrize("protocol", ["hear-fast", "xares"])
def test_fast_protocols_separate_tones(scene_task: Path, tmp_path: Path, protocol: str) -> None:
    """Three tone frequencies are trivially separable in band energies (X-ARES's 10 epochs are
    ~10 Adam steps on this 36-clip task, far from enough: the test gives it 300 epochs)."""
    extra = {"max_epochs": 60, "hidden_dim": 64}
    if protocol == "xares":
        extra = {"max_epochs": 300, "patience": 300}
    rec = _run(scene_task, tmp_path / protocol, protocol=protocol, seeds=2, **extra)
    assert rec["scores"]["top1_acc"]["mean"] >= 0.95, rec["scores"]
    folds = {r["fold"] for r in rec["runs"]}
    assert len(rec["runs"]) == 2 * len(folds)  # the chosen point on every fold, every seed
    if protocol == "xares":
        assert rec["hparams"]["lr"] == XARES_POINT["lr"] and rec["hparams"]["max_epochs"] == 300
        assert rec["hparams"]["lr_schedule"] == "cosine" and rec["grid"] == []
    else:  # the grid ran once, seed 0 only, and halving stopped half of it early
        assert len(rec["grid"]) == 8 and all(len(g["valid"]) == 1 for g in rec["grid"])
        assert rec["hparams"]["hidden_dim"] == 64


def test_first_seed_reruns_with_other_seeds(scene_task: Path, tmp_path: Path) -> None:
    """``first_seed`` shifts the probe seeds; a probe is a function of its own seed, so the seed-1
    runs of a two-seed run reappear exactly in a one-seed run that starts at seed 1."""
    both = _run(scene_task, tmp_path / "a", protocol="xares", seeds=2)
    one = _run(scene_task, tmp_path / "b", protocol="xares", seeds=1, first_seed=1)
    assert {r["seed"] for r in both["runs"]} == {0, 1} and {r["seed"] for r in one["runs"]} == {1}
    seed1 = [r["test"] for r in both["runs"] if r["seed"] == 1]
    assert seed1 == [r["test"] for r in one["runs"]]
    moved = _run(
        scene_task,
        tmp_path / "c",
        protocol="hear",
        seeds=1,
        first_seed=5,
        max_epochs=6,
        hidden_dim=16,
        grid_points=2,
    )
    assert {r["seed"] for r in moved["runs"]} == {5}
