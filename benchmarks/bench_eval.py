"""hear-eval-kit's grid search trained two ways on one task, in one run: all grid points together
(echoic's stacked probes) and one ``torch.nn`` MLP per grid point after another.

Both ways get the same embeddings (from the evaluation cache), the same 8 grid points, the same
data order and the same loop (validation every 3 epochs, early stopping after 20 checks without
improvement, ≤ 500 epochs, best validation state tested). Printed: wall and CPU seconds of each,
their ratio, and per grid point the validation and test score both ways, plus the test score of the
grid point each way selects (the number hear-eval-kit reports for the fold).

Run::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_eval.py --tasks TASKS_DIR --task esc50
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_eval.py --tasks TASKS_DIR --task drums \\
        --max-epochs 60     # shorter

``--repeat R`` alternates the two ways R times (order reversed each round) and reports medians.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch

from echoic.evaluate.cache import embed_task
from echoic.evaluate.data import Scorer, gather
from echoic.evaluate.fit import FitConfig, fit_probes
from echoic.evaluate.metrics import MINIMISED, report_metrics
from echoic.evaluate.probes import ProbeConfig, _spec, hear_grid
from echoic.evaluate.task import find_tasks, load_task
from echoic.zoo.registry import resolve_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tasks", required=True, help="folder of built tasks (echoic tasks build)")
    p.add_argument("--task", default="esc50", help="task name")
    p.add_argument("--model", default="echoic-untrained-tiny")
    p.add_argument("--cache", default="results/cache", help="embedding cache (echoic eval's)")
    p.add_argument("--grid-points", type=int, default=8)
    p.add_argument("--max-epochs", type=int, default=500)
    p.add_argument("--hidden-dim", type=int, default=1024)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    [task_dir] = [d for d in find_tasks([args.tasks]) if load_task(d).name == args.task]
    task = load_task(task_dir)
    model = resolve_model(args.model)
    emb = embed_task(model, task, args.cache, progress=True)
    plan = task.fold_plans()[0]
    train, valid, test = (gather(task, emb, s) for s in (plan.train, plan.valid, plan.test))
    metrics = report_metrics(task.metrics, task.prediction_type, task.is_event)
    valid_scorer, test_scorer = Scorer(task, valid, metrics), Scorer(task, test, metrics)
    config = ProbeConfig(grid_points=args.grid_points, hidden_dim=args.hidden_dim)
    points = hear_grid(config)
    specs = [_spec(pt, 0, config) for pt in points]
    fit = config.fit_config(task, seed=0)
    fit.max_epochs = args.max_epochs
    multilabel = task.prediction_type == "multilabel"
    y = train.targets if multilabel else train.labels
    print(
        f"task {task.name} fold plan 0 (train {plan.train}, valid {plan.valid}, test {plan.test}); "
        f"{train.x.shape[0]} training rows x {train.x.shape[1]} dims; model {model.label}; "
        f"{len(specs)} grid points; max {fit.max_epochs} epochs; torch threads "
        f"{torch.get_num_threads()}"
    )

    def run(backend: str) -> tuple[float, float, dict]:
        wall, cpu = time.perf_counter(), time.process_time()
        result = fit_probes(
            specs,
            train.x,
            y,
            valid.x,
            valid_scorer.validation,
            metrics[0],
            task.n_labels,
            multilabel,
            FitConfig(**{**fit.__dict__}),
            backend,
            groups=train.offsets,
            group_split=train.file_split,
        )
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        probs = result.predict(test.x, multilabel)
        tests = [
            test_scorer.test(probs[g], result.best_extra[g])[metrics[0]] for g in range(len(specs))
        ]
        return wall, cpu, {"result": result, "test": np.array(tests)}

    times: dict[str, list[tuple[float, float]]] = {"stacked": [], "sequential": []}
    outs: dict[str, dict] = {}
    for r in range(args.repeat):
        for backend in ("stacked", "sequential") if r % 2 == 0 else ("sequential", "stacked"):
            wall, cpu, out = run(backend)
            times[backend].append((wall, cpu))
            outs[backend] = out
            print(f"  round {r + 1}: {backend:10s} {wall:8.1f} s wall {cpu:8.1f} s CPU", flush=True)

    sign = -1.0 if metrics[0] in MINIMISED else 1.0
    print(f"\n{'grid point':44s} {'stacked val/test':>18s} {'sequential val/test':>20s} epochs")
    for g, pt in enumerate(points):
        a, b = outs["stacked"], outs["sequential"]
        name = f"{pt['hidden_layers']} x {args.hidden_dim}, {pt['initialization']}, lr {pt['lr']:g}"
        print(
            f"{name:44s} {a['result'].best_score[g]:8.4f}/{a['test'][g]:.4f} "
            f"{b['result'].best_score[g]:10.4f}/{b['test'][g]:.4f}   "
            f"{a['result'].epochs_run[g]}/{b['result'].epochs_run[g]}"
        )
    if task.is_event:
        event_scoring(task, valid, valid_scorer, outs["stacked"]["result"])
    wall_s = statistics.median(t[0] for t in times["stacked"])
    wall_q = statistics.median(t[0] for t in times["sequential"])
    cpu_s = statistics.median(t[1] for t in times["stacked"])
    cpu_q = statistics.median(t[1] for t in times["sequential"])

    def tflop(result) -> float:
        """Matmul work the probes did: 6 N (fwd + bwd) per training row, 2 N per validation row."""
        total = 0.0
        for spec, epochs in zip(result.specs, result.epochs_run, strict=True):
            dims = [train.x.shape[1]] + [spec.hidden_dim] * spec.hidden_layers + [task.n_labels]
            macs = sum(a * b for a, b in itertools.pairwise(dims))
            checks = epochs // fit.check_every
            total += 2 * macs * (3 * train.x.shape[0] * epochs + valid.x.shape[0] * checks)
        return total / 1e12

    work = {k: tflop(v["result"]) for k, v in outs.items()}
    print(
        f"\nwork (last round): stacked {work['stacked']:.2f} TFLOP in "
        f"{times['stacked'][-1][1]:.1f} CPU s = "
        f"{1e3 * work['stacked'] / times['stacked'][-1][1]:.1f} GFLOP/CPU-s; sequential "
        f"{work['sequential']:.2f} TFLOP in {times['sequential'][-1][1]:.1f} CPU s = "
        f"{1e3 * work['sequential'] / times['sequential'][-1][1]:.1f} GFLOP/CPU-s "
        "(early stopping makes the two ways train different numbers of epochs)"
    )
    picks = {k: int(np.argmax(sign * v["result"].best_score)) for k, v in outs.items()}
    chosen = {k: float(outs[k]["test"][g]) for k, g in picks.items()}
    diff = 100 * (outs["stacked"]["test"] - outs["sequential"]["test"])
    print(
        f"\nwall: stacked {wall_s:.1f} s, sequential {wall_q:.1f} s -> ratio {wall_q / wall_s:.2f}x"
        f"\nCPU:  stacked {cpu_s:.1f} s, sequential {cpu_q:.1f} s -> ratio {cpu_q / cpu_s:.2f}x"
        f"\nselected grid point: stacked #{picks['stacked']} test {chosen['stacked']:.4f}, "
        f"sequential #{picks['sequential']} test {chosen['sequential']:.4f} -> difference "
        f"{100 * (chosen['stacked'] - chosen['sequential']):+.2f} points"
        f"\nper grid point test difference (points): mean {diff.mean():+.2f}, "
        f"mean |d| {np.abs(diff).mean():.2f}, max |d| {np.abs(diff).max():.2f}"
    )


def hear_style_events(probs: np.ndarray, valid, setting: tuple[float, float]) -> dict:
    """Events the way hear-eval-kit makes them: per file, per label, a Python loop over runs."""
    from scipy.ndimage import median_filter

    out = {}
    for f, name in enumerate(valid.files):
        a, b = valid.offsets[f], valid.offsets[f + 1]
        ts, pred = valid.timestamps_ms[a:b], probs[a:b]
        width = round(setting[0] / float(np.mean(np.diff(ts))))
        if width:
            pred = median_filter(pred, size=(width, 1))
        events = []
        for c in range(pred.shape[1]):
            idx = np.where(pred[:, c] > 0.5)[0]
            for run in np.split(idx, np.where(np.diff(idx) != 1)[0] + 1) if len(idx) else []:
                if ts[run[-1]] - ts[run[0]] >= setting[1]:
                    events.append((c, ts[run[0]], ts[run[-1]]))
        out[name] = events
    return out


def event_scoring(task, valid, scorer: Scorer, result) -> None:
    """One validation check's event scoring: echoic's vectorised code vs per-file events + sed_eval
    (hear-eval-kit's way; sed_eval must be installed)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import sed_eval
        except ImportError:
            print("(sed_eval not installed: event scoring comparison skipped)")
            return
    probs = result.predict(valid.x, True)[0]
    start = time.perf_counter()
    ours = scorer.choose_postprocessing(probs)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    best = None
    for setting in scorer.postprocessing:
        events = hear_style_events(probs, valid, setting)
        metric = sed_eval.sound_event.EventBasedMetrics(
            event_label_list=task.vocabulary,
            t_collar=0.2,
            evaluate_onset=True,
            evaluate_offset=False,
        )
        for f, name in enumerate(valid.files):
            ref = [
                {
                    "event_label": task.vocabulary[lab],
                    "event_onset": s / 1000,
                    "event_offset": e / 1000,
                    "file": name,
                }
                for ff, lab, s, e in zip(
                    *(getattr(valid.reference, k) for k in ("file", "label", "start_ms", "end_ms")),
                    strict=True,
                )
                if ff == f
            ]
            est = [
                {
                    "event_label": task.vocabulary[c],
                    "event_onset": s / 1000,
                    "event_offset": e / 1000,
                    "file": name,
                }
                for c, s, e in events[name]
            ]
            metric.evaluate(reference_event_list=ref, estimated_event_list=est)
        value = metric.results_overall_metrics()["f_measure"]["f_measure"]
        value = 0.0 if np.isnan(value) else value
        best = max(best or (value, setting), (value, setting))
    theirs_s = time.perf_counter() - start
    print(
        f"\nevent scoring of one validation check ({len(valid.files)} files, "
        f"{len(scorer.postprocessing)} post-processing settings): echoic {1000 * ours_s:.1f} ms, "
        f"per-file events + sed_eval {1000 * theirs_s:.1f} ms -> ratio {theirs_s / ours_s:.0f}x; "
        f"best F {ours[0]:.6f} vs {best[0]:.6f}"
    )


if __name__ == "__main__":
    main()
