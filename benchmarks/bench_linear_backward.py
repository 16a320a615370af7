"""The linear probe with and without ``rows_matmul``'s skinny products, side by side.

``echoic.evaluate.skinny.rows_matmul`` computes the probe's ``x @ w`` and its weight gradient in
the orientation that is fast for many rows and few labels. This runs ``fit_linear`` on one fold of
a cached task the way the probe does (rows standardised; event rows kept factored where the probe
keeps them) with ``rows_matmul`` and with the plain autograd product (``torch.matmul`` patched in),
in alternating order, and prints CPU seconds, the chosen strength, the validation and test scores
of both, how far apart their weights are, and the ratio::

    OMP_NUM_THREADS=1 python benchmarks/bench_linear_backward.py --model echoic-small \\
        --task tasks/esc50_scenes-v1.0.0-full --cache results/cache-all --fold 1 --rounds 2
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

import echoic.evaluate.factored as factored_module
import echoic.evaluate.linear as linear_module
from _cached_task import fold_setup, print_ratio
from echoic.evaluate.linear import LinearFit, fit_linear
from echoic.evaluate.skinny import rows_matmul


def _use(product: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    linear_module.rows_matmul = product  # type: ignore[assignment]
    factored_module.rows_matmul = product  # type: ignore[assignment]


def main() -> None:
    args, task, fold = fold_setup(__doc__.splitlines()[0], rounds=2)
    x, xv, xt, targets, multilabel = fold.x, fold.xv, fold.xt, fold.targets, fold.multilabel
    metrics, valid_scorer, test_scorer = fold.metrics, fold.valid_scorer, fold.test_scorer
    rows = x
    if fold.train.factored is not None:  # as the probe does (ProbeConfig.factor_events)
        rows = fold.train.factored.affine(
            torch.from_numpy(fold.mean.astype(np.float32)),
            torch.from_numpy(fold.std.astype(np.float32)),
        )
    form = "factored" if rows is not x else "dense"
    print(f"{args.model} on {task.name} fold {args.fold}: {x.shape[0]} training rows of "
          f"{x.shape[1]} dims ({form}), {task.n_labels} labels")  # fmt: skip

    products = {"rows_matmul": rows_matmul, "plain": torch.matmul}
    seconds: dict[str, list[float]] = {name: [] for name in products}
    fits: dict[str, LinearFit] = {}
    for round_ in range(args.rounds):
        order = list(products) if round_ % 2 == 0 else list(products)[::-1]
        for name in order:
            _use(products[name])
            start = time.process_time()
            fit = fit_linear(rows, targets, xv, valid_scorer.validation, metrics[0],
                             task.n_labels, multilabel)  # fmt: skip
            seconds[name].append(time.process_time() - start)
            fits[name] = fit
            score = test_scorer.test(fit.predict(xt), fit.best_extra)[metrics[0]]
            print(f"  round {round_} {name:>11}: {seconds[name][-1]:.1f} CPU s, chosen l2 "
                  f"{fit.l2:g}, validation {fit.best_score:.4f}, test {metrics[0]} {score:.4f}, "
                  f"iterations {sum(int(q['iterations']) for q in fit.path)}", flush=True)  # fmt: skip
    _use(rows_matmul)
    a, b = fits["rows_matmul"], fits["plain"]
    if a.l2 == b.l2:
        scale = float(b.weight.abs().max())
        diff = float((a.weight - b.weight).abs().max())
        print(f"weights at the chosen strength: max |difference| {diff:.3g} (max |weight| "
              f"{scale:.3g})")  # fmt: skip
    print_ratio("plain / rows_matmul CPU", seconds["plain"], seconds["rows_matmul"])


if __name__ == "__main__":
    main()
