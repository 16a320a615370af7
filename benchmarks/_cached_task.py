"""What the probe benchmarks share: one task's embeddings from the evaluation cache (imported as
``_cached_task``: a script's own folder is on ``sys.path``), after a line naming the CPU."""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from echoic.embed.embedder import Embedder
from echoic.embed.precision import cpu_flags, cpu_model
from echoic.evaluate.cache import TaskEmbeddings, embed_task
from echoic.evaluate.data import Scorer, SplitSet, gather
from echoic.evaluate.metrics import report_metrics
from echoic.evaluate.probes import _moments, _scale
from echoic.evaluate.task import HearTask, load_task


def parser(description: str, rounds: int) -> argparse.ArgumentParser:
    """``--model --task --cache --rounds --threads`` (add a script's own options to it)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", default="echoic-tiny")
    p.add_argument("--task", default="tasks/esc50_scenes-v1.0.0-full")
    p.add_argument("--cache", default="results/methods/cache")
    p.add_argument("--rounds", type=int, default=rounds)
    p.add_argument("--threads", type=int, default=1)
    return p


def load(args: argparse.Namespace) -> tuple[HearTask, TaskEmbeddings]:
    """Set the threads, print the CPU and its flags, and return the task and its embeddings
    (computed into the cache on the first run)."""
    torch.set_num_threads(args.threads)
    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "avx512_vnni"})
    print(f"CPU: {cpu_model()}; flags: {' '.join(flags)}; {torch.get_num_threads()} thread(s)")
    task = load_task(args.task)
    return task, embed_task(Embedder(args.model), task, Path(args.cache), progress=False)


@dataclass
class LinearFold:
    """One fold as the linear probe sees it: splits, scorers, rows standardised with the training
    split's moments (``mean``, ``std``), and the training targets."""

    train: SplitSet
    metrics: list[str]
    valid_scorer: Scorer
    test_scorer: Scorer
    multilabel: bool
    x: np.ndarray
    xv: np.ndarray
    xt: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    targets: Any


def linear_fold(task: HearTask, emb: TaskEmbeddings, fold: int) -> LinearFold:
    """Fold ``fold`` of ``task`` prepared as ``echoic eval --protocol linear`` prepares it."""
    plan = task.fold_plans()[fold]
    train, valid, test = (gather(task, emb, s) for s in (plan.train, plan.valid, plan.test))
    metrics = report_metrics(task.metrics, task.prediction_type, task.is_event)
    multilabel = task.prediction_type == "multilabel"
    mean, std = _moments(train.x)
    x, xv, xt = (_scale(v, mean, std) for v in (train.x, valid.x, test.x))
    targets = train.targets if multilabel else train.labels
    return LinearFold(train, metrics, Scorer(task, valid, metrics), Scorer(task, test, metrics),
                      multilabel, x, xv, xt, mean, std, targets)  # fmt: skip


def print_ratio(label: str, slower: list[float], faster: list[float]) -> None:
    """``label: median ratio (per round ...)`` of two paired lists of seconds."""
    ratios = [a / b for a, b in zip(slower, faster, strict=True)]
    print(f"{label}: {statistics.median(ratios):.2f}x "
          f"(per round {', '.join(f'{r:.2f}' for r in ratios)})")  # fmt: skip


def fold_setup(description: str, rounds: int) -> tuple[argparse.Namespace, HearTask, LinearFold]:
    """The linear-probe benchmarks' start: options (``--fold`` added), task, embeddings, fold."""
    p = parser(description, rounds)
    p.add_argument("--fold", type=int, default=0)
    args = p.parse_args()
    task, emb = load(args)
    return args, task, linear_fold(task, emb, args.fold)
