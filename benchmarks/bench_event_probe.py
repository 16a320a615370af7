"""Event-task probes on factored rows (native frames + interpolation) vs the dense timestamp rows.

echoic-tiny's timestamps (40 ms) are its 160-ms patch frames interpolated: a probe's first layer can
run on the frames (``echoic.evaluate.factored``). This trains the same HEAR probes (fold 0 of
esc50_scenes, the grid's first points, one seed) both ways for a fixed number of epochs, the two
alternating round by round, and prints CPU seconds per round, the ratio, and how far the two runs'
test probabilities and validation scores are apart.

Run (the task folder from ``echoic tasks build``; the cache is filled on the first run)::

    .venv/bin/python benchmarks/bench_event_probe.py --task tasks/esc50_scenes-v1.0.0-full
    .venv/bin/python benchmarks/bench_event_probe.py --linear --rounds 1   # the linear probe
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from echoic.embed.embedder import Embedder
from echoic.embed.precision import cpu_flags, cpu_model
from echoic.evaluate.cache import embed_task
from echoic.evaluate.data import Scorer, gather
from echoic.evaluate.fit import FitConfig, fit_probes
from echoic.evaluate.linear import fit_linear
from echoic.evaluate.metrics import report_metrics
from echoic.evaluate.mlp import ProbeSpec
from echoic.evaluate.probes import _moments, _scale
from echoic.evaluate.task import load_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="tasks/esc50_scenes-v1.0.0-full")
    parser.add_argument("--model", default="echoic-tiny")
    parser.add_argument("--cache", default="results/bench-event-cache")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--linear",
        action="store_true",
        help="the linear protocol instead (standardised rows, L-BFGS along the L2 path, full fit)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "avx512_vnni"})
    print(f"CPU: {cpu_model()}; flags: {' '.join(flags)}; {torch.get_num_threads()} thread(s)")

    task = load_task(args.task)
    model = Embedder(args.model)
    emb = embed_task(model, task, Path(args.cache), progress=False)
    plan = task.fold_plans()[0]
    train, valid, test = (gather(task, emb, s) for s in (plan.train, plan.valid, plan.test))
    if train.factored is None:
        raise SystemExit(
            f"{args.model}'s rows on {task.name} are not interpolations of cached native frames "
            "(or the cache predates native frames: delete it and run again)"
        )
    print(
        f"{args.model} on {task.name} fold 0: {train.x.shape[0]} training rows of "
        f"{train.x.shape[1]} dims from {train.factored.native.shape[0]} native frames"
    )
    metrics = report_metrics(task.metrics, task.prediction_type, task.is_event)
    scorer = Scorer(task, valid, metrics)
    if args.linear:
        _linear(args, task, train, valid, test, scorer, metrics)
        return
    specs = [ProbeSpec(hidden_layers=h, seed=0) for h in (1, 2)]  # hidden 1024, as HEAR
    config = FitConfig(max_epochs=args.epochs, check_every=3)
    inputs = {"factored": train.factored, "dense": train.x}
    seconds: dict[str, list[float]] = {name: [] for name in inputs}
    results = {}
    for round_ in range(args.rounds):
        order = list(inputs) if round_ % 2 == 0 else list(inputs)[::-1]
        for name in order:
            start = time.process_time()
            fit = fit_probes(specs, inputs[name], train.targets, valid.x, scorer.validation,
                             metrics[0], task.n_labels, True, config, groups=train.offsets,
                             group_split=train.file_split)  # fmt: skip
            seconds[name].append(time.process_time() - start)
            results[name] = (fit.best_score.copy(), fit.predict(test.x, multilabel=True))
    for name, values in seconds.items():
        print(f"{name:>9}: CPU s per run {statistics.median(values):.1f} "
              f"({', '.join(f'{v:.1f}' for v in values)})")  # fmt: skip
    ratios = [d / f for d, f in zip(seconds["dense"], seconds["factored"], strict=True)]
    print(f"dense / factored CPU: {statistics.median(ratios):.2f}x "
          f"(per round {', '.join(f'{r:.2f}' for r in ratios)})")  # fmt: skip
    (vf, pf), (vd, pd) = results["factored"], results["dense"]
    print(f"after {args.epochs} epochs: validation {metrics[0]} factored {np.round(vf, 4).tolist()}"
          f" vs dense {np.round(vd, 4).tolist()}; test probabilities max |diff| "
          f"{float(np.abs(pf - pd).max()):.2e}")  # fmt: skip


def _linear(args, task, train, valid, test, scorer, metrics) -> None:
    """The linear probe on fold 0, factored vs dense rows, alternating; CPU s, chosen strength,
    validation and test scores."""
    mean, std = _moments(train.x)
    shift, scale = (torch.from_numpy(v.astype(np.float32)) for v in (mean, std))
    inputs = {"factored": train.factored.affine(shift, scale), "dense": _scale(train.x, mean, std)}
    xv, xt = _scale(valid.x, mean, std), _scale(test.x, mean, std)
    test_scorer = Scorer(task, test, metrics)
    seconds: dict[str, list[float]] = {name: [] for name in inputs}
    for round_ in range(args.rounds):
        order = list(inputs) if round_ % 2 == 0 else list(inputs)[::-1]
        for name in order:
            start = time.process_time()
            fit = fit_linear(inputs[name], train.targets, xv, scorer.validation, metrics[0],
                             task.n_labels, True)  # fmt: skip
            seconds[name].append(time.process_time() - start)
            test_score = test_scorer.test(fit.predict(xt), fit.best_extra)[metrics[0]]
            print(f"  round {round_} {name:>9}: {seconds[name][-1]:.1f} CPU s, l2 {fit.l2:g}, "
                  f"validation {fit.best_score:.4f}, test {metrics[0]} {test_score:.4f}, "
                  f"iterations {[int(p['iterations']) for p in fit.path]}", flush=True)  # fmt: skip
    ratios = [d / f for d, f in zip(seconds["dense"], seconds["factored"], strict=True)]
    print(f"linear: dense / factored CPU: {statistics.median(ratios):.2f}x "
          f"(per round {', '.join(f'{r:.2f}' for r in ratios)})")  # fmt: skip


if __name__ == "__main__":
    main()
