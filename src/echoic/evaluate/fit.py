"""Train many probes with hear-eval-kit's loop: validation every few epochs, early stopping on the
primary validation score, and the best-scoring state kept for testing.

Semantics (Lightning ``EarlyStopping`` + ``ModelCheckpoint`` as hear-eval-kit configures them):
validation runs after epochs ``check_every, 2 * check_every, ...``; a score counts as better only
when strictly better than the best so far; a probe stops after ``patience`` validation checks
without improvement, or after ``max_epochs``; its test predictions come from the state of its best
validation check. Each probe stops on its own; stopped probes leave the stacked tensors. A probe
whose validation score reaches the best possible value (accuracy 1, error rate 0) stops at once:
no later check could be strictly better, so its best state — all that is tested — is final (the
only difference from running on is ``epochs_run``).

Successive halving (``halving_epochs``, the ``hear-fast`` protocol's grid search): at each listed
epoch, after that epoch's validation check, the worse half of the probes still training stop (by
their best validation score so far); their best states are kept and tested like any other.

Data order: ``order="fixed"`` reproduces hear-eval-kit, whose training data are the training
splits one after another, each split's files shuffled once (an event file's frames kept together),
read in that same order every epoch;
``order="epoch"`` reshuffles the rows every epoch. A trailing mini-batch of one row is skipped
(BatchNorm cannot train on it; Lightning would stop with an error).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from echoic.errors import ConfigError
from echoic.evaluate.factored import InterpolatedRows
from echoic.evaluate.metrics import MINIMISED, best_possible, is_better, worst_value
from echoic.evaluate.mlp import ProbeSpec, SingleMLP, StackedMLP, dropout_seed

Scorer = Callable[[np.ndarray], tuple[np.ndarray, list[Any]]]
"""``(G, N, C)`` validation probabilities → ``(G,)`` primary scores and one extra per probe
(e.g. the event post-processing chosen for that score)."""


@dataclass
class FitConfig:
    """The training loop (defaults: hear-eval-kit's grid constants)."""

    batch_size: int = 1024
    max_epochs: int = 500
    check_every: int = 3
    patience: int = 20
    order: str = "fixed"  # "fixed" (hear-eval-kit) | "epoch"
    seed: int = 0
    predict_rows: int = 1 << 26  # max G * rows * hidden floats per prediction chunk
    halving_epochs: tuple[int, ...] = ()  # successive halving: epochs where half the probes stop
    lr_schedule: str = "constant"  # "constant" | "cosine" (lr -> lr_floor * lr over max_epochs)
    lr_floor: float = 0.1
    device: str = "cpu"  # where probes train ("cuda", "cuda:1", ...); see resolve_device


def resolve_device(name: str) -> str:
    """``"auto"`` → ``"cuda"`` when a GPU is visible, else ``"cpu"``; other names are checked.

    Probes give the same protocol on any device, not the same bits: CUDA kernels and CUDA dropout
    streams differ from the CPU's, so scores move within their seed-to-seed spread.
    """
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError as err:
        raise ConfigError(
            f"probe device must be auto, cpu, cuda or cuda:N; found {name!r} ({err})"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"probe device {name!r} asked for, but torch sees no CUDA GPU here "
            f"(torch {torch.__version__}); use --device cpu or auto"
        )
    return str(dev)


@dataclass
class FitResult:
    """What training gave each probe (index ``g`` = ``specs[g]``)."""

    specs: list[ProbeSpec]
    best_score: np.ndarray
    best_epoch: np.ndarray
    best_extra: list[Any]
    epochs_run: np.ndarray
    seconds: float
    metric: str
    _models: list[tuple[list[int], StackedMLP | SingleMLP]] = field(
        repr=False, default_factory=list
    )

    def predict(self, x: np.ndarray | torch.Tensor, multilabel: bool) -> np.ndarray:
        """``(G, N, C)`` probabilities of every probe at its best validation state."""
        x = torch.as_tensor(np.asarray(x, np.float32))
        if self._models:  # every model of one fit lives on one device: move the rows once
            x = x.to(self._models[0][1].device)
        out: np.ndarray | None = None
        for members, model in self._models:
            probs = predict(model, x, multilabel, FitConfig().predict_rows)
            if out is None:
                out = np.zeros((len(self.specs), *probs.shape[1:]), np.float32)
            out[members] = probs
        assert out is not None
        return out


def predict(
    model: StackedMLP | SingleMLP, x: torch.Tensor, multilabel: bool, budget: int
) -> np.ndarray:
    """``(G, N, C)`` probabilities in row chunks that keep activations under ``budget`` floats."""
    width = max(model.spec0.hidden_dim if isinstance(model, StackedMLP) else 1024, 1)
    rows = max(256, budget // max(1, model.size * width))
    parts = []
    with torch.no_grad():
        for lo in range(0, x.shape[0], rows):
            logits = model.forward(x[lo : lo + rows], train=False)
            parts.append(torch.sigmoid(logits) if multilabel else torch.softmax(logits, -1))
    if not parts:
        return np.zeros((model.size, 0, 0), np.float32)
    return torch.cat(parts, 1).cpu().numpy()


def _loss(logits: torch.Tensor, y: torch.Tensor, multilabel: bool) -> torch.Tensor:
    """Sum over probes of each probe's mean loss (so each probe gets its own gradient)."""
    g, n, c = logits.shape
    if multilabel:
        per = F.binary_cross_entropy_with_logits(
            logits, y[None].expand(g, n, c), reduction="none"
        ).mean((1, 2))
    else:
        per = F.cross_entropy(logits.reshape(g * n, c), y.repeat(g), reduction="none")
        per = per.view(g, n).mean(1)
    return per.sum()


def training_order(
    n_rows: int,
    groups: np.ndarray | None,
    rng: np.random.Generator,
    group_split: np.ndarray | None = None,
) -> np.ndarray:
    """hear-eval-kit's fixed order: split after split (in the given order), each split's files
    shuffled; an event file's frames stay together.

    ``groups``: row offsets ``(F + 1,)`` of the files (None: one row per file); ``group_split``:
    ``(F,)`` index of each file's split (None: a single split).
    """
    offsets = np.arange(n_rows + 1) if groups is None else np.asarray(groups, np.int64)
    n_files = len(offsets) - 1
    split = np.zeros(n_files, np.int64) if group_split is None else np.asarray(group_split)
    files = np.concatenate(
        [rng.permutation(np.flatnonzero(split == s)) for s in np.unique(split)]
        or [np.zeros(0, np.int64)]
    )
    if groups is None:
        return files.astype(np.int64)
    return np.concatenate(
        [np.arange(offsets[i], offsets[i + 1]) for i in files] or [np.zeros(0, np.int64)]
    ).astype(np.int64)


def fit_probes(
    specs: list[ProbeSpec],
    x_train: np.ndarray | InterpolatedRows,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    score_valid: Scorer,
    metric: str,
    n_labels: int,
    multilabel: bool,
    config: FitConfig | None = None,
    backend: str = "stacked",
    groups: np.ndarray | None = None,
    group_split: np.ndarray | None = None,
) -> FitResult:
    """Train ``specs`` on ``(x_train (N, D), y_train)`` with early stopping on ``score_valid``.

    ``y_train``: ``(N,)`` class indices (multiclass) or ``(N, C)`` multi-hot (multilabel), with
    ``C = n_labels``. ``backend``: ``"stacked"`` (probes of one shape train together) or
    ``"sequential"`` (one ``torch.nn`` probe after another: the reference). ``groups``: row
    offsets of files whose rows stay together in the fixed order (event tasks); ``group_split``:
    each file's split index (files are shuffled within their split, see :func:`training_order`).
    """
    config = config or FitConfig()
    start = time.perf_counter()
    dev = torch.device(config.device)
    x: torch.Tensor | InterpolatedRows
    if isinstance(x_train, InterpolatedRows):  # event rows kept as blends of native frames
        x = x_train.to(dev)
    else:
        x = torch.as_tensor(np.ascontiguousarray(x_train, np.float32)).to(dev)
    if multilabel:
        y = torch.as_tensor(np.asarray(y_train, np.float32)).to(dev)
    else:
        y = torch.as_tensor(np.asarray(y_train, np.int64)).to(dev)
    xv = torch.as_tensor(np.ascontiguousarray(x_valid, np.float32)).to(dev)
    g_all = len(specs)
    result = FitResult(
        specs=list(specs),
        best_score=np.full(g_all, worst_value(metric)),
        best_epoch=np.full(g_all, -1),
        best_extra=[None] * g_all,
        epochs_run=np.zeros(g_all, np.int64),
        seconds=0.0,
        metric=metric,
    )
    d_in = int(x.shape[1])
    if backend == "stacked":
        buckets: dict[tuple, list[int]] = {}
        for i, s in enumerate(specs):
            buckets.setdefault(s.shape_key(), []).append(i)

        def make(ss: list[ProbeSpec]) -> StackedMLP | SingleMLP:
            seeds = [dropout_seed(sp, config.seed) for sp in ss]
            return StackedMLP(ss, d_in, n_labels, seeds, device=dev)

        # every shape in one epoch loop
        batches = [[(idx, make([specs[i] for i in idx])) for idx in buckets.values()]]
    elif backend == "sequential":

        def make(ss: list[ProbeSpec]) -> StackedMLP | SingleMLP:
            return SingleMLP(ss, d_in, n_labels, device=dev)

        # one probe after another, each with its own loop
        batches = [[([i], make([specs[i]]))] for i in range(g_all)]
    else:
        raise ValueError(f"backend must be 'stacked' or 'sequential'; found {backend!r}")
    for runs in batches:
        _fit_together(
            runs, x, y, xv, score_valid, multilabel, config, (groups, group_split), result, make
        )
    result.seconds = time.perf_counter() - start
    return result


def _fit_together(
    runs: list[tuple[list[int], StackedMLP | SingleMLP]],
    x: torch.Tensor | InterpolatedRows,
    y: torch.Tensor,
    xv: torch.Tensor,
    score_valid: Scorer,
    multilabel: bool,
    config: FitConfig,
    groups: tuple[np.ndarray | None, np.ndarray | None],
    result: FitResult,
    make: Callable[[list[ProbeSpec]], StackedMLP | SingleMLP],
) -> None:
    """Train the models of ``runs`` (each with its probe indices) in one epoch loop."""
    metric = result.metric
    ceiling = best_possible(metric)
    rng = np.random.default_rng(config.seed)
    order = torch.as_tensor(training_order(x.shape[0], groups[0], rng, groups[1])).to(x.device)
    active = [(list(idx), model) for idx, model in runs]
    best_states = {id(m): (list(idx), m.state()) for idx, m in runs}
    wait = {i: 0 for idx, _ in runs for i in idx}
    n = x.shape[0]
    cuda = [x.device.index or 0] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        # a probe trained alone (SingleMLP, torch.nn.Dropout) draws its masks from the global
        # RNG, seeded as StackedMLP seeds that probe's own generator
        torch.manual_seed(dropout_seed(result.specs[runs[0][0][0]], config.seed))
        for epoch in range(config.max_epochs):
            scale = lr_factor(config, epoch)
            for _, model in active:
                model.lr_scale = scale
            if config.order == "epoch":
                order = torch.as_tensor(rng.permutation(n)).to(x.device)
            for lo in range(0, n, config.batch_size):
                rows = order[lo : lo + config.batch_size]
                if rows.numel() < 2:
                    continue
                xb, yb = x[rows], y[rows]
                for _, model in active:
                    _loss(model.forward(xb, train=True), yb, multilabel).backward()
                    model.adam_step()
            for idx, _ in active:
                result.epochs_run[idx] = epoch + 1
            if (epoch + 1) % config.check_every:
                continue
            for idx, model in active:
                probs = predict(model, xv, multilabel, config.predict_rows)
                scores, extras = score_valid(probs)
                improved = []
                for k, i in enumerate(idx):
                    value = float(scores[k])
                    if np.isnan(value):  # e.g. an F-measure without any estimated event
                        value = np.inf if metric in MINIMISED else 0.0
                    if is_better(value, float(result.best_score[i]), metric):
                        result.best_score[i], result.best_epoch[i] = value, epoch + 1
                        result.best_extra[i] = extras[k]
                        wait[i] = 0
                        improved.append(k)
                    else:
                        wait[i] += 1
                    if value == ceiling:  # nothing can beat it: the best state is final
                        wait[i] = config.patience
                if improved:
                    _store_best(best_states, model, idx, improved)
            if epoch + 1 in config.halving_epochs:
                _halve([i for idx, _ in active for i in idx], wait, result, config.patience)
            still = []
            for idx, model in active:
                keep = [k for k, i in enumerate(idx) if wait[i] < config.patience]
                if len(keep) == len(idx):
                    still.append((idx, model))
                elif keep:
                    model.keep(torch.tensor(keep))
                    still.append(([idx[k] for k in keep], model))
            active = still
            if not active:
                break
    for idx, state in best_states.values():
        final = make([result.specs[i] for i in idx])
        final.load_state(state)
        result._models.append((idx, final))


def lr_factor(config: FitConfig, epoch: int) -> float:
    """The schedule's factor on the base lr during ``epoch`` (0-based): 1 when constant; cosine
    from 1 at the first epoch to ``lr_floor`` at epoch ``max_epochs`` (ignite's
    ``CosineAnnealingScheduler`` with cycle ``max_epochs``, stepped at each epoch start, as X-ARES
    uses it)."""
    if config.lr_schedule == "constant":
        return 1.0
    if config.lr_schedule != "cosine":
        raise ConfigError(f"lr_schedule must be constant or cosine; found {config.lr_schedule!r}")
    t = epoch / max(1, config.max_epochs)
    return config.lr_floor + (1.0 - config.lr_floor) * 0.5 * (1.0 + math.cos(math.pi * t))


def _halve(members: list[int], wait: dict[int, int], result: FitResult, patience: int) -> None:
    """Successive halving: of the probes still training, stop the worse half by best validation
    score so far (ties: the later probe stops); at least one keeps training."""
    alive = [i for i in members if wait[i] < patience]
    if len(alive) < 2:
        return
    sign = -1.0 if result.metric in MINIMISED else 1.0
    ranked = sorted(alive, key=lambda i: (-sign * float(result.best_score[i]), i))
    for i in ranked[(len(alive) + 1) // 2 :]:
        wait[i] = patience


def _store_best(
    best_states: dict[int, tuple[list[int], list[torch.Tensor]]],
    model: StackedMLP | SingleMLP,
    idx: list[int],
    improved: list[int],
) -> None:
    """Copy the improved members' current state into the best-state store of their run."""
    for orig, state in best_states.values():
        pos = {i: p for p, i in enumerate(orig)}
        if idx[0] not in pos:
            continue
        current = model.state(torch.tensor(improved, device=model.device))
        dst = torch.tensor([pos[idx[k]] for k in improved], device=model.device)
        for s, c in zip(state, current, strict=True):
            if s.ndim:
                s[dst] = c
        return
