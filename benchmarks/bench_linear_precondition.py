"""The linear probe's L-BFGS with and without its preconditioner, side by side on real embeddings.

``echoic.evaluate.linear`` solves each L2 strength of the path in preconditioned variables (the
rows' second-moment eigenbasis, scaled per label by its frequency and the strength): the same
objective and minimiser, fewer iterations. This runs ``fit_linear`` both ways on one fold of a
task (the model's embeddings from the evaluation cache, computed there on the first run),
alternating round by round, and prints CPU seconds, the ratio, the iterations per strength, the
objective each reached at each strength (lower is nearer the unique minimum), the strength chosen
on validation and the test score.

Run (a task folder from ``echoic tasks build``, a model directory or card name)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_linear_precondition.py \\
        --model results/methods/tera/seed0/model --task tasks/esc50_scenes-v1.0.0-full --fold 1
"""

from __future__ import annotations

import time

import numpy as np
import torch

from _cached_task import fold_setup, print_ratio
from echoic.evaluate.linear import _objective, fit_linear, preconditioner, solve_logistic


def main() -> None:
    args, task, fold = fold_setup(__doc__.splitlines()[0], rounds=1)
    x, xv, xt, targets, multilabel = fold.x, fold.xv, fold.xt, fold.targets, fold.multilabel
    metrics, valid_scorer, test_scorer = fold.metrics, fold.valid_scorer, fold.test_scorer
    y = torch.as_tensor(np.asarray(targets, np.float32 if multilabel else np.int64))
    rows = torch.as_tensor(x)
    print(f"{args.model} on {task.name} fold {args.fold}: {x.shape[0]} training rows of "
          f"{x.shape[1]} dims, {task.n_labels} labels")  # fmt: skip

    names = {True: "preconditioned", False: "plain"}
    seconds: dict[bool, list[float]] = {True: [], False: []}
    fits = {}
    for round_ in range(args.rounds):
        for flag in (True, False) if round_ % 2 == 0 else (False, True):
            start = time.process_time()
            fit = fit_linear(x, targets, xv, valid_scorer.validation, metrics[0], task.n_labels,
                             multilabel, precondition=flag)  # fmt: skip
            seconds[flag].append(time.process_time() - start)
            fits[flag] = fit
            score = test_scorer.test(fit.predict(xt), fit.best_extra)[metrics[0]]
            print(f"  round {round_} {names[flag]:>14}: {seconds[flag][-1]:.1f} CPU s, "
                  f"chosen l2 {fit.l2:g}, validation {fit.best_score:.4f}, "
                  f"test {metrics[0]} {score:.4f}", flush=True)  # fmt: skip
    for flag, fit in fits.items():
        value = float(_objective(rows, y, fit.weight, fit.bias, fit.l2, multilabel))
        print(f"{names[flag]:>14}: iterations per strength "
              f"{[int(p['iterations']) for p in fit.path]} (total "
              f"{sum(int(p['iterations']) for p in fit.path)}), objective at the chosen strength "
              f"{value:.6f}")  # fmt: skip
    if fits[True].l2 == fits[False].l2:
        # both at the same strength: 50 more preconditioned iterations from the better of the
        # two solutions estimate how far each is from the minimum
        best = min(fits.values(), key=lambda f: float(_objective(rows, y, f.weight, f.bias,
                                                                  f.l2, multilabel)))  # fmt: skip
        change = preconditioner(rows, y, task.n_labels, multilabel)
        w, b, _ = solve_logistic(rows, y, task.n_labels, best.l2, multilabel,
                                 (best.weight, best.bias), 50, precondition=change)  # fmt: skip
        floor = float(_objective(rows, y, w, b, best.l2, multilabel))
        for flag, fit in fits.items():
            gap = float(_objective(rows, y, fit.weight, fit.bias, fit.l2, multilabel)) - floor
            print(f"{names[flag]:>14}: objective above the refined minimum {gap:.2e}")
    print_ratio("plain / preconditioned CPU", seconds[False], seconds[True])


if __name__ == "__main__":
    main()
