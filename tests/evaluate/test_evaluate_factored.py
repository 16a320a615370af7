"""Event rows kept as blends of native frames: the same probe, a quarter of the first layer's work.

Checked at three levels: the factorisation reproduces the timestamp rows the Embedder writes (and
is refused for rows that are not interpolations), the stacked MLP gives the same outputs and
gradients on factored and dense rows, and a HEAR run on a real event task (esc50_scenes, built from
../shared/data in small mode, a tiny echoic model) scores the same either way.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from echoic.embed.timestamps import regular_timestamps
from echoic.evaluate.factored import InterpolatedRows, concat_rows, interpolated_rows
from echoic.evaluate.mlp import ProbeSpec, StackedMLP

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("ECHOIC_DATA", REPO / ".." / "shared" / "data"))


def native_and_rows(n_files: int = 3, dim: int = 8, seed: int = 0):
    """Native frames 160 ms apart and their 40-ms timestamp rows, per file, as the Embedder makes."""
    g = torch.Generator().manual_seed(seed)
    frames, frame_times, rows, times = [], [], [], []
    for i in range(n_files):
        k = 5 + 3 * i
        f = torch.randn(k, dim, generator=g)
        ft = 80.0 + 160.0 * torch.arange(k, dtype=torch.float64)
        x, t = regular_timestamps(f, ft, duration_ms=160.0 * k + 37, frame_hop_ms=160.0)
        frames.append(f.numpy())
        frame_times.append(ft.numpy())
        rows.append(x.numpy())
        times.append(t.numpy())

    def offsets(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)

    return (
        np.concatenate(rows),
        offsets(rows),
        np.concatenate(times),
        np.concatenate(frames),
        offsets(frames),
        np.concatenate(frame_times),
    )


def test_rows_are_reproduced_from_native_frames() -> None:
    x, off, t, f, f_off, ft = native_and_rows()
    rows = interpolated_rows(x, off, t, f, f_off, ft)
    assert rows is not None and rows.shape == x.shape
    assert len(rows.native) * 3 < len(x)  # ~4 rows per native frame
    np.testing.assert_allclose(rows.dense().numpy(), x, atol=1e-5)
    sub = rows[torch.tensor([3, 0, 7])]
    np.testing.assert_allclose(sub.dense().numpy(), x[[3, 0, 7]], atol=1e-5)
    both = concat_rows([rows, rows])
    np.testing.assert_allclose(both.dense().numpy(), np.concatenate([x, x]), atol=1e-5)


def test_rows_that_are_not_interpolations_are_refused() -> None:
    x, off, t, f, f_off, ft = native_and_rows()
    x = x.copy()
    x[5] += 0.5  # one row that no blend of its neighbours gives
    assert interpolated_rows(x, off, t, f, f_off, ft) is None
    y, *rest = native_and_rows()
    assert interpolated_rows(y, *rest[:2], np.zeros_like(f), *rest[3:]) is None


@pytest.mark.parametrize("depth", [1, 2])
def test_stacked_mlp_is_the_same_function_on_factored_rows(depth: int) -> None:
    x, off, t, f, f_off, ft = native_and_rows(dim=16)
    rows = interpolated_rows(x, off, t, f, f_off, ft)
    assert rows is not None
    specs = [ProbeSpec(hidden_layers=depth, hidden_dim=32, seed=s, dropout=0.0) for s in (0, 1)]
    batch = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:20]
    outputs, grads = [], []
    for data in (torch.from_numpy(x)[batch], rows[batch]):
        model = StackedMLP(specs, 16, 5)
        logits = model.forward(data, train=True)
        logits.square().sum().backward()
        outputs.append(logits.detach())
        grads.append([p.grad.clone() for p in model.params])
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-5, rtol=1e-5)
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_a_real_event_task_trains_the_same_probe_factored_or_dense(tmp_path: Path) -> None:
    """echoic-tiny on esc50_scenes (small build from the real recordings): fold 0's probes trained
    on factored and on dense rows predict the test frames alike (a few epochs: later, float
    rounding lets two runs drift apart as two seeds would; bench_event_probe.py measures full
    runs)."""
    if not (DATA / "esc50" / "meta.csv").is_file():
        pytest.skip(f"real-audio data not found at {DATA}")
    from echoic.embed.embedder import Embedder
    from echoic.evaluate.cache import embed_task
    from echoic.evaluate.data import Scorer, gather
    from echoic.evaluate.fit import FitConfig, fit_probes
    from echoic.evaluate.metrics import report_metrics
    from echoic.evaluate.task import load_task
    from echoic.tasks.writer import build_tasks

    [built] = build_tasks(["esc50_scenes"], tmp_path / "tasks", DATA.resolve(), 16000, "small",
                          progress=False)  # fmt: skip
    model = Embedder("echoic-tiny")  # patch frames 160 ms apart, timestamps every 40 ms
    task = load_task(built.directory)
    emb = embed_task(model, task, tmp_path / "cache", progress=False)
    plan = task.fold_plans()[0]
    train, valid, test = (gather(task, emb, s) for s in (plan.train, plan.valid, plan.test))
    assert train.factored is not None and len(train.factored.native) * 3 < len(train.x)
    metrics = report_metrics(task.metrics, task.prediction_type, task.is_event)
    specs = [ProbeSpec(hidden_layers=h, hidden_dim=64, seed=0) for h in (1, 2)]
    config = FitConfig(max_epochs=6, check_every=3)
    probs = []
    for x in (train.factored, train.x):
        fit = fit_probes(specs, x, train.targets, valid.x, Scorer(task, valid, metrics).validation,
                         metrics[0], task.n_labels, True, config, groups=train.offsets,
                         group_split=train.file_split)  # fmt: skip
        probs.append(fit.predict(test.x, multilabel=True))
    np.testing.assert_allclose(probs[0], probs[1], atol=2e-3)

    # the linear probe (L-BFGS logistic regression) on standardised factored rows solves the
    # same problem: the same strength is chosen and both solutions reach the same objective value
    # on the dense rows (L-BFGS stops at 200 iterations, so they agree to that, not bitwise)
    from echoic.evaluate.linear import _objective, fit_linear
    from echoic.evaluate.probes import _moments, _scale

    mean, std = _moments(train.x)
    shift, scale = (torch.from_numpy(v.astype(np.float32)) for v in (mean, std))
    dense = _scale(train.x, mean, std)
    fits = [
        fit_linear(x, train.targets, _scale(valid.x, mean, std),
                   Scorer(task, valid, metrics).validation, metrics[0], task.n_labels, True)
        for x in (train.factored.affine(shift, scale), dense)
    ]  # fmt: skip
    assert fits[0].l2 == fits[1].l2
    y = torch.as_tensor(train.targets, dtype=torch.float32)
    values = [
        float(_objective(torch.from_numpy(dense), y, f.weight, f.bias, f.l2, True)) for f in fits
    ]
    assert abs(values[0] - values[1]) <= 1e-3 * abs(values[1]), values
    np.testing.assert_allclose(
        fits[0].predict(_scale(test.x, mean, std)), fits[1].predict(_scale(test.x, mean, std)),
        atol=0.05,
    )  # fmt: skip


def test_factored_rows_move_between_devices() -> None:
    rows = InterpolatedRows(torch.ones(2, 3), torch.tensor([0]), torch.tensor([1]), torch.ones(1))
    assert rows.to("cpu").device.type == "cpu" and rows.shape == (1, 3)
