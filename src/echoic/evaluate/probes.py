"""The three probes: ``hear`` (hear-eval-kit's MLP grid), ``linear`` (EVAR-style) and ``knn``.

hear: the 16-point grid {1, 2 hidden layers} x {xavier uniform, xavier normal} x {lr 3.2e-3,
1e-3, 3.2e-4, 1e-4} (hidden 1024, BatchNorm, dropout 0.1, batch 1024, ≤ 500 epochs, validation
every 3 epochs, patience 20 checks), listed in scikit-learn ``ParameterGrid`` order and shuffled
with ``random.Random(42)`` — hear-eval-kit's ``seed_everything(42)`` + ``random.shuffle`` — of
which the first 8 are trained. Grid search runs on the first fold plan only; every grid point is
trained with every seed (all together, vectorised) and the point with the best mean validation
score over seeds wins (ties: first in the shuffled order). The winner is retrained on every
other fold (its seeds together), and fold 0 reuses the grid-search probes, as hear-eval-kit does.

linear: features standardised with the training split's mean and standard deviation, then
L2-regularised logistic regression (softmax, or one-vs-rest sigmoids for multilabel and event
tasks) solved exactly by full-batch L-BFGS along a path of strengths, the strength chosen on the
validation split (:mod:`echoic.evaluate.linear`). Deterministic, so one run per fold whatever
``seeds`` says.

knn: cosine similarity to the training rows, k = 10 nearest, votes weighted by
``exp(similarity / 0.07)``; class probabilities are the normalised weighted votes. Deterministic,
so there is one run per fold whatever ``seeds`` says.

retrieval: no probe; each test clip queries the fold's other clips by cosine similarity, scored
with mAP@10, P@1 and recall@10 (:mod:`echoic.evaluate.retrieval`). One run per fold.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
import torch

from echoic.evaluate.cache import TaskEmbeddings
from echoic.evaluate.data import Scorer, SplitSet, gather
from echoic.evaluate.fit import FitConfig, fit_probes
from echoic.evaluate.knn import SplitNeighbours
from echoic.evaluate.linear import DEFAULT_L2_PATH, fit_linear
from echoic.evaluate.metrics import MINIMISED, report_metrics
from echoic.evaluate.mlp import ProbeSpec
from echoic.evaluate.retrieval import METRICS as RETRIEVAL_METRICS
from echoic.evaluate.retrieval import run_retrieval
from echoic.evaluate.task import FoldPlan, HearTask
from echoic.evaluate.units import Unit, UnitStore, run_units

HEAR_LRS = (3.2e-3, 1e-3, 3.2e-4, 1e-4)
HEAR_INITS = ("xavier_uniform", "xavier_normal")
HEAR_DEPTHS = (1, 2)
PROTOCOLS = ("hear", "hear-fast", "xares", "linear", "knn", "retrieval")
XARES_POINT = {"hidden_layers": 0, "initialization": "torch_default", "lr": 1e-3}
"""X-ARES 0.1.3's probe: LayerNorm then one Linear (its ``Mlp``), Adam at the task default lr 1e-3
(its Trainer's 3e-3 default is overridden by every task config), batch 32, 10 epochs, cosine decay
to 0.1 lr, validation every epoch, the best validation state tested. No grid."""
HEAR_FAST_PATIENCE = 20  # validation checks without improvement (as hear: shorter stops early
# on the initial plateau of slow starters, measured)
HEAR_FAST_RUNGS = (8, 16, 32)  # validation checks after which half the grid points stop
HEAR_FAST_WIDTH = 256  # hidden units (hear: 1024)
TASK_SPECIFIC_PARAM_GRID = {"dcase2016_task2": {"check_val_every_n_epoch": [10]}}
"""hear-eval-kit's per-task overrides (validation every 10 epochs on DCASE 2016 task 2)."""


@dataclass
class ProbeConfig:
    """Protocol settings; ``None`` fields take the protocol's default (hear-eval-kit's for hear)."""

    protocol: str = "hear"
    seeds: int = 1
    first_seed: int = 0  # probe seeds first_seed .. first_seed + seeds - 1 (a re-seeded rerun)
    grid_points: int = 8
    grid_seed: int = 42
    hidden_dim: int | None = None  # None: the protocol's (hear 1024, hear-fast 256)
    max_epochs: int | None = None
    check_every: int | None = None
    patience: int | None = None
    batch_size: int | None = None
    order: str | None = None  # "fixed" | "epoch"
    backend: str = "stacked"  # "stacked" | "sequential"
    linear_l2_path: tuple[float, ...] = DEFAULT_L2_PATH
    fast_rungs: tuple[int, ...] = HEAR_FAST_RUNGS  # hear-fast: checks at which half the grid stops
    fast_min_steps: int = 0  # hear-fast: batch shrunk (to >= 32 rows) for >= this many steps/epoch
    factor_events: bool = True  # event rows interpolated from native frames: first layer on those
    knn_k: int = 10
    knn_temperature: float = 0.07

    def __post_init__(self) -> None:
        if self.hidden_dim is None:  # resolved here, so saved configs (and their keys) name it
            self.hidden_dim = HEAR_FAST_WIDTH if self.protocol == "hear-fast" else 1024

    @property
    def probe_width(self) -> int:
        """Hidden units of the MLP probes (``hidden_dim``, resolved from the protocol)."""
        assert self.hidden_dim is not None
        return int(self.hidden_dim)

    def fit_config(self, task: HearTask, seed: int) -> FitConfig:
        if self.protocol in ("hear", "hear-fast"):
            grid = dict(TASK_SPECIFIC_PARAM_GRID.get(task.name, {}))
            grid.update(task.evaluation_params.get("task_specific_param_grid", {}))
            base = FitConfig(
                batch_size=1024,
                max_epochs=500,
                check_every=int(_first(grid.get("check_val_every_n_epoch"), 3)),
                patience=20 if self.protocol == "hear" else HEAR_FAST_PATIENCE,
                order="fixed",
            )
        elif self.protocol == "xares":
            base = FitConfig(
                batch_size=32,
                max_epochs=10,
                check_every=1,
                patience=10,  # never stops early: X-ARES runs its 10 epochs
                order="epoch",
                lr_schedule="cosine",
            )
        else:
            base = FitConfig(
                batch_size=256, max_epochs=200, check_every=1, patience=20, order="epoch"
            )
        for name in ("batch_size", "max_epochs", "check_every", "patience", "order"):
            value = getattr(self, name)
            if value is not None:
                setattr(base, name, value)
        base.seed = seed
        return base


def _first(values: Any, default: int) -> int:
    if isinstance(values, list) and values:
        return int(values[0])
    return int(values) if values is not None else default


def hear_grid(config: ProbeConfig) -> list[dict[str, Any]]:
    """The grid points hear-eval-kit trains: 16 in ParameterGrid order, shuffled, first N."""
    points = [
        {"hidden_layers": h, "initialization": i, "lr": lr}
        for h in HEAR_DEPTHS
        for i in HEAR_INITS
        for lr in HEAR_LRS
    ]
    random.Random(config.grid_seed).shuffle(points)
    return points[: config.grid_points]


@dataclass
class ProbeOutcome:
    """Everything a probe produced for one (model, task)."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    hparams: dict[str, Any] = field(default_factory=dict)
    grid: list[dict[str, Any]] = field(default_factory=list)
    confusion: np.ndarray | None = None
    seconds: float = 0.0
    metrics: list[str] = field(default_factory=list)  # set when the protocol has its own metrics


def run_probe(
    task: HearTask,
    emb: TaskEmbeddings,
    config: ProbeConfig,
    device: str = "cpu",
    store: UnitStore | None = None,
    jobs: int = 1,
    threads: int = 1,
    progress: bool = False,
    split_grid: bool | None = None,
) -> ProbeOutcome:
    """Train and test ``config.protocol`` on every fold plan of ``task`` (MLP probes on
    ``device``; the device is not part of the protocol, see :func:`resolve_device`).

    The MLP probes train in units (:mod:`echoic.evaluate.units`): for ``hear``, stage 0 is the
    grid search on fold 0, one unit per grid point on the CPU (all points in one unit on a GPU,
    which trains them faster together), and stage 1 the chosen point on every other fold, one
    unit per fold; for ``linear``, one unit per fold. Finished units are kept in ``store`` (a
    rerun skips them) and a stage's units run in ``jobs`` processes of ``threads`` threads
    (CPU only). A probe's result does not depend on which probes share its unit (its init, dropout
    masks and data order are its own), so neither the split nor ``jobs`` changes the protocol.
    ``split_grid`` forces one unit per grid point (True) or one for the grid (False).
    """
    if config.protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}; found {config.protocol!r}")
    start = time.perf_counter()
    metrics = report_metrics(task.metrics, task.prediction_type, task.is_event)
    outcome = ProbeOutcome()
    plans = task.fold_plans()
    if config.protocol == "retrieval":  # no training: see echoic.evaluate.retrieval
        outcome.runs, outcome.hparams = run_retrieval(task, emb, plans)
        outcome.metrics = list(RETRIEVAL_METRICS)
        outcome.seconds = time.perf_counter() - start
        return outcome
    if config.protocol == "knn":
        _knn_probe(task, emb, config, metrics, plans, outcome)
        outcome.seconds = time.perf_counter() - start
        return outcome
    seeds = (
        [0]
        if config.protocol == "linear"
        else list(range(config.first_seed, config.first_seed + config.seeds))
    )
    work = _UnitWork(task, emb, config, device, metrics, plans, seeds)
    cuda = torch.device(device).type == "cuda"
    jobs = 1 if cuda else jobs  # forked workers cannot share a CUDA context
    run = partial(
        run_units, store=store, jobs=jobs, threads=threads, progress=progress, desc=task.name
    )
    if config.protocol == "linear":
        work.points = [{"l2_path": list(config.linear_l2_path)}]
        units = [Unit(f, (0,)) for f in range(len(plans))]
        done = run(units, work)
        chosen, best = work.points[0], 0
    elif config.protocol == "xares":  # no grid: the one point on every fold with every seed
        work.points = [dict(XARES_POINT)]
        done = run([Unit(f, (0,)) for f in range(len(plans))], work)
        chosen, best = work.points[0], 0
    elif config.protocol == "hear-fast":
        # stage 0: the grid on fold 0 with seed 0 only, successive halving; stage 1: the chosen
        # point on every fold with every seed (fold 0's seed 0 is the stage-0 survivor's run)
        work.points = hear_grid(config)
        grid_unit = Unit(0, tuple(range(len(work.points))), seeds=(seeds[0],))
        done = run([grid_unit], work)
        valid = np.array(done[grid_unit]["valid"])
        best = _select(valid, done[grid_unit]["epochs"], work.points, 1, metrics[0], outcome)
        chosen = work.points[best]
        rest = [Unit(f, (best,), stage=1) for f in range(1, len(plans))]
        if len(seeds) > 1:
            rest.insert(0, Unit(0, (best,), stage=1, seeds=tuple(seeds[1:])))
        done.update(run(rest, work))
    else:
        work.points = hear_grid(config)
        n = len(work.points)
        split = not cuda if split_grid is None else split_grid
        groups = [(i,) for i in range(n)] if split else [tuple(range(n))]
        grid_units = [Unit(0, g) for g in groups]
        done = run(grid_units, work)
        valid = np.array([v for u in grid_units for v in done[u]["valid"]])
        epochs = [e for u in grid_units for e in done[u]["epochs"]]
        best = _select(valid, epochs, work.points, len(seeds), metrics[0], outcome)
        chosen = work.points[best]
        rest = [Unit(f, (best,), stage=1) for f in range(1, len(plans))]
        done.update(run(rest, work))
    for unit in sorted(done, key=lambda u: u.fold):
        for run_record in done[unit]["runs"]:
            if run_record["point"] == best:
                outcome.runs.append({k: v for k, v in run_record.items() if k != "point"})
        matrix = done[unit]["confusion"].get(str(best))
        if matrix is not None:
            matrix = np.asarray(matrix, np.int64)
            outcome.confusion = matrix if outcome.confusion is None else outcome.confusion + matrix
    outcome.hparams = {**chosen, **_fixed_hparams(config, task)}
    outcome.seconds = time.perf_counter() - start
    return outcome


@dataclass
class _UnitWork:
    """Trains one unit: the fold's data are gathered here (kept for the next unit of that fold)."""

    task: HearTask
    emb: TaskEmbeddings
    config: ProbeConfig
    device: str
    metrics: list[str]
    plans: list[FoldPlan]
    seeds: list[int]
    points: list[dict[str, Any]] = field(default_factory=list)
    _fold: tuple[int, Any] | None = None

    def _data(self, f: int) -> tuple[SplitSet, SplitSet, SplitSet, Scorer, Scorer]:
        if self._fold is None or self._fold[0] != f:
            self._fold = None  # free the previous fold's rows first
            plan = self.plans[f]
            train, valid, test = (
                gather(self.task, self.emb, s) for s in (plan.train, plan.valid, plan.test)
            )
            if self.config.protocol == "linear":
                mean, std = _moments(train.x)
                if train.factored is not None and self.config.factor_events:
                    # event rows stay blends of native frames, standardised with the rows' moments
                    train.factored = train.factored.affine(
                        torch.from_numpy(mean.astype(np.float32)),
                        torch.from_numpy(std.astype(np.float32)),
                    )
                else:
                    train.factored = None
                train.x, valid.x, test.x = (
                    _scale(x, mean, std) for x in (train.x, valid.x, test.x)
                )
            elif self.config.protocol == "xares":  # its LayerNorm's normalisation, per row
                train.x, valid.x, test.x = (_row_normalise(x) for x in (train.x, valid.x, test.x))
                train.factored = None
            scorers = (
                Scorer(self.task, valid, self.metrics),
                Scorer(self.task, test, self.metrics),
            )
            self._fold = (f, (train, valid, test, *scorers))
        return self._fold[1]

    def __call__(self, unit: Unit) -> dict[str, Any]:
        if self.config.protocol == "linear":
            return self._linear(unit)
        task, config = self.task, self.config
        train, valid, test, valid_scorer, test_scorer = self._data(unit.fold)
        seeds = self.seeds if unit.seeds is None else list(unit.seeds)
        pairs = [(p, s) for p in unit.points for s in seeds]
        specs = [_spec(self.points[p], s, config) for p, s in pairs]
        factored = train.factored if config.factor_events else None
        result = fit_probes(
            specs,
            train.x if factored is None else factored,
            train.targets if task.prediction_type == "multilabel" else train.labels,
            valid.x,
            valid_scorer.validation,
            self.metrics[0],
            task.n_labels,
            task.prediction_type == "multilabel",
            self._fit_config(unit),
            config.backend,
            groups=train.offsets,
            group_split=train.file_split,
        )
        probs_all = result.predict(test.x, task.prediction_type == "multilabel")
        plan = self.plans[unit.fold]
        runs = []
        confusion: dict[str, np.ndarray] = {}
        for k, (p, s) in enumerate(pairs):
            extra = {
                "valid_score": float(result.best_score[k]),
                "best_epoch": int(result.best_epoch[k]),
                "epochs_run": int(result.epochs_run[k]),
                "train_seconds": result.seconds,
                "point": p,
            }
            pp = result.best_extra[k]
            runs.append(_run(plan, unit.fold, s, test_scorer, probs_all[k], pp, extra))
            matrix = test_scorer.confusion(probs_all[k])
            if matrix is not None:
                confusion[str(p)] = matrix + confusion.get(str(p), 0)
        return {
            "runs": runs,
            "valid": result.best_score.tolist(),
            "epochs": result.best_epoch.tolist(),
            "confusion": confusion,
        }

    def _fit_config(self, unit: Unit) -> FitConfig:
        fit = replace(self.config.fit_config(self.task, seed=unit.fold), device=self.device)
        if self.config.protocol == "hear-fast" and unit.stage == 0:
            fit.halving_epochs = tuple(c * fit.check_every for c in self.config.fast_rungs)
        if (
            self.config.protocol == "hear-fast"
            and self.config.fast_min_steps
            and self.config.batch_size is None
        ):  # small tasks: hear's 1024-row batch is one Adam step per epoch; take more, smaller
            rows = int(self._data(unit.fold)[0].x.shape[0])
            fit.batch_size = min(fit.batch_size, max(32, rows // self.config.fast_min_steps))
        if (
            self.config.protocol == "xares"
            and self.task.is_event
            and self.config.batch_size is None
        ):
            # X-ARES batches 32 clips of a frame task: here 32 files' worth of frame rows
            train = self._data(unit.fold)[0]
            files = max(1, len(train.offsets) - 1) if train.offsets is not None else 1
            fit.batch_size = max(32, round(32 * train.x.shape[0] / files))
        return fit

    def _linear(self, unit: Unit) -> dict[str, Any]:
        """One fold of the linear probe (deterministic: one run, recorded as seed 0)."""
        task = self.task
        train, valid, test, valid_scorer, test_scorer = self._data(unit.fold)
        multilabel = task.prediction_type == "multilabel"
        result = fit_linear(
            train.x if train.factored is None else train.factored,
            train.targets if multilabel else train.labels,
            valid.x,
            valid_scorer.validation,
            self.metrics[0],
            task.n_labels,
            multilabel,
            self.config.linear_l2_path,
            self.device,
        )
        probs = result.predict(test.x)
        extra = {
            "valid_score": result.best_score,
            "l2": result.l2,
            "l2_path": result.path,
            "train_seconds": result.seconds,
            "point": 0,
        }
        run = _run(
            self.plans[unit.fold], unit.fold, 0, test_scorer, probs, result.best_extra, extra
        )
        matrix = test_scorer.confusion(probs)
        return {
            "runs": [run],
            "valid": [result.best_score],
            "epochs": [0],
            "confusion": {} if matrix is None else {"0": matrix},
        }


def _knn_probe(
    task: HearTask,
    emb: TaskEmbeddings,
    config: ProbeConfig,
    metrics: list[str],
    plans: list[FoldPlan],
    outcome: ProbeOutcome,
) -> None:
    """Deterministic and quick: one run per fold, no units."""
    search = SplitNeighbours(emb, config.knn_k)  # a pair of splits is searched once
    temperature = config.knn_temperature
    for f, plan in enumerate(plans):
        train, valid, test = (gather(task, emb, s) for s in (plan.train, plan.valid, plan.test))
        valid_scorer = Scorer(task, valid, metrics)
        test_scorer = Scorer(task, test, metrics)
        probs = search.probabilities(plan.test, plan.train, train.targets, temperature)
        pp = None
        if valid_scorer.is_event:  # post-processing chosen on validation, as for the MLP probes
            valid_probs = search.probabilities(plan.valid, plan.train, train.targets, temperature)
            _, pp = valid_scorer.choose_postprocessing(valid_probs)
        _record(outcome, plan, f, 0, test_scorer, probs, pp, {})
    outcome.hparams = {"k": config.knn_k, "temperature": config.knn_temperature}


def _spec(point: dict[str, Any], seed: int, config: ProbeConfig) -> ProbeSpec:
    linear = point["hidden_layers"] == 0
    return ProbeSpec(
        hidden_layers=int(point["hidden_layers"]),
        hidden_dim=config.probe_width,
        dropout=0.0 if linear else 0.1,
        lr=float(point["lr"]),
        init=str(point["initialization"]),
        batch_norm=not linear,
        seed=seed,
    )


def _fixed_hparams(config: ProbeConfig, task: HearTask) -> dict[str, Any]:
    if config.protocol == "linear":
        return {
            "solver": "L-BFGS (full batch, strong Wolfe), warm-started along the L2 path",
            "standardised": True,
        }
    fit = config.fit_config(task, 0)
    out = {k: v for k, v in asdict(fit).items() if k not in ("seed", "predict_rows", "device")}
    if config.protocol in ("hear", "hear-fast"):
        out.update({"hidden_dim": config.probe_width, "dropout": 0.1, "hidden_norm": "BatchNorm1d"})
        out["optimiser"] = "Adam"
    if config.protocol == "xares":
        out.update({"input_norm": "per-row LayerNorm (no affine)", "optimiser": "Adam"})
    return out


def _select(
    valid: np.ndarray,
    epochs: list[int],
    points: list[dict[str, Any]],
    n_seeds: int,
    metric: str,
    out: ProbeOutcome,
) -> int:
    """Index of the grid point with the best mean validation score over seeds (first on ties)."""
    scores = valid.reshape(len(points), n_seeds)
    means = scores.mean(1)
    best_epochs = np.asarray(epochs).reshape(len(points), n_seeds)
    for p, m, sc, ep in zip(points, means, scores, best_epochs, strict=True):
        out.grid.append(
            {"hparams": p, "valid_mean": float(m), "valid": sc.tolist(), "epochs": ep.tolist()}
        )
    sign = -1.0 if metric in MINIMISED else 1.0
    return int(np.argmax(sign * means))


def _run(
    plan: FoldPlan,
    fold: int,
    seed: int,
    scorer: Scorer,
    probs: np.ndarray,
    postprocessing: Any,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """One run's record: its test scores (events decoded with ``postprocessing``) and ``extra``."""
    test = scorer.test(probs, postprocessing)
    run = {"fold": plan.name, "fold_index": fold, "seed": seed, "test": test, **extra}
    if postprocessing is not None:
        run["postprocessing"] = {
            "median_filter_ms": postprocessing[0],
            "min_duration": postprocessing[1],
        }
    return run


def _record(
    out: ProbeOutcome,
    plan: FoldPlan,
    fold: int,
    seed: int,
    scorer: Scorer,
    probs: np.ndarray,
    postprocessing: Any,
    extra: dict[str, Any],
) -> None:
    run = _run(plan, fold, seed, scorer, probs, postprocessing, extra)
    out.runs.append(run)
    confusion = scorer.confusion(probs)
    if confusion is not None:
        out.confusion = confusion if out.confusion is None else out.confusion + confusion


def _row_normalise(x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Each row to zero mean and unit variance (LayerNorm without its affine, which a following
    Linear absorbs)."""
    x64 = np.asarray(x, np.float64)
    mean = x64.mean(1, keepdims=True)
    var = x64.var(1, keepdims=True)
    return ((x64 - mean) / np.sqrt(var + eps)).astype(np.float32)


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """StandardScaler's mean and std of the rows (float64; std 0 → 1)."""
    mean = x.mean(0, dtype=np.float64)
    std = x.std(0, dtype=np.float64)
    std[std == 0] = 1.0
    return mean, std


def _scale(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return ((x - mean) / std).astype(np.float32)
