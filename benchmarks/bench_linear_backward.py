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

import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

import echoic.evaluate.factored as factored_module
import echoic.evaluate.linear as linear_module
from _cached_task import load, parser
from echoic.evaluate.data import Scorer, gather
from echoic.evaluate.linear import LinearFit, fit_linear
from echoic.evaluate.metrics import report_metrics
from echoic.evaluate.probes import _moments, _scale
from echoic.evaluate.skinny import rows_matmul


def _use(product: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    linear_module.rows_matmul = product  # type: ignore[assignment]
    factored_module.rows_matmul = product  # type: ignore[assignment]


def main() -> None:
    p = parser(__doc__.splitlines()[0], rounds=2)
    p.add_argument("--fold", type=int, default=0)
    args = p.parse_args()
    task, emb = load(args)
    plan = task.fold_plans()[args.fold]
    train, valid, test = (gather(task, emb, s) for s in (plan.train, plan.valid, plan.test))
    metrics = report_metrics(task.metrics, task.prediction_type, task.is_event)
    valid_scorer, test_scorer = Scorer(task, valid, metrics), Scorer(task, test, metrics)
    multilabel = task.prediction_type == "multilabel"
    mean, std = _moments(train.x)
    x, xv, xt = (_scale(v, mean, std) for v in (train.x, valid.x, test.x))
    rows = x
    if train.factored is not None:  # as the probe does (ProbeConfig.factor_events)
        rows = train.factored.affine(
            torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(std.astype(np.float32))
        )
    targets = train.targets if multilabel else train.labels
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
    ratios = [q / r for q, r in zip(seconds["plain"], seconds["rows_matmul"], strict=True)]
    print(f"plain / rows_matmul CPU: {statistics.median(ratios):.2f}x "
          f"(per round {', '.join(f'{r:.2f}' for r in ratios)})")  # fmt: skip


if __name__ == "__main__":
    main()
