"""The kNN probe's split-pair search vs a search per fold plan, side by side on real embeddings.

``echoic eval --protocol knn`` searches each (query split, training split) pair of a task once
(:class:`echoic.evaluate.knn.SplitNeighbours`); before, every fold plan searched its query splits
against its concatenated training rows. On a k-fold event task (test and validation splits are
both queried) that is 4 distinct pairs per split instead of 6. This runs both over every fold plan
of one task (the model's embeddings from the evaluation cache), in alternating order, and prints
CPU seconds, the ratio, the searches made and how far the probabilities are apart.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_knn_pairs.py \\
        --model results/methods/m2d/seed0/model --task tasks/esc50_scenes-v1.0.0-full
"""

from __future__ import annotations

import time

import numpy as np

from _cached_task import load, parser, print_ratio
from echoic.evaluate.data import gather
from echoic.evaluate.knn import SplitNeighbours, knn_probabilities

K, TEMPERATURE = 10, 0.07


def per_plan(task, emb) -> list[np.ndarray]:
    out = []
    for plan in task.fold_plans():
        train, valid, test = (gather(task, emb, s) for s in (plan.train, plan.valid, plan.test))
        for query in (test, valid) if task.is_event else (test,):
            out.append(knn_probabilities(train.x, train.targets, query.x, K, TEMPERATURE))
    return out


def pairs(task, emb) -> tuple[list[np.ndarray], int]:
    search, out = SplitNeighbours(emb, K), []
    for plan in task.fold_plans():
        train = gather(task, emb, plan.train)
        for query in (plan.test, plan.valid) if task.is_event else (plan.test,):
            out.append(search.probabilities(query, plan.train, train.targets, TEMPERATURE))
    return out, search.searches


def main() -> None:
    args = parser(__doc__.splitlines()[0], rounds=2).parse_args()
    task, emb = load(args)
    rows = {s: e.x.shape for s, e in emb.splits.items()}
    print(f"{args.model} on {task.name}: {len(task.fold_plans())} fold plans, splits {rows}")
    seconds: dict[str, list[float]] = {"per plan": [], "split pairs": []}
    results: dict[str, list[np.ndarray]] = {}
    searches = 0
    for round_ in range(args.rounds):
        order = ("split pairs", "per plan") if round_ % 2 == 0 else ("per plan", "split pairs")
        for name in order:
            start = time.process_time()
            if name == "per plan":
                results[name] = per_plan(task, emb)
            else:
                results[name], searches = pairs(task, emb)
            seconds[name].append(time.process_time() - start)
            print(f"  round {round_} {name:>11}: {seconds[name][-1]:.1f} CPU s", flush=True)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(*results.values(), strict=True))
    queries = len(results["per plan"])
    print(f"searches: per plan {queries * len(task.fold_plans()[0].train)}, split pairs "
          f"{searches}; probabilities max |diff| {diff:.2e}")  # fmt: skip
    print_ratio("per plan / split pairs CPU", seconds["per plan"], seconds["split pairs"])


if __name__ == "__main__":
    main()
