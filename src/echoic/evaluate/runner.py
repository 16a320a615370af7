"""``evaluate``: models × tasks → cached embeddings → probes → JSON, CSV, table and report.

A model is a name or directory (resolved by :func:`echoic.zoo.registry.resolve_model`: zoo
baselines and peers, else echoic models), a ready :class:`~echoic.embed.base.EmbeddingModel`, or
a HEAR module (:class:`~echoic.evaluate.hear_module.HearModuleModel`). A zoo model whose optional
dependency is missing is skipped with one line saying how to install it.
"""

from __future__ import annotations

import gc
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import torch

from echoic.embed.base import EmbeddingModel
from echoic.errors import ConfigError
from echoic.evaluate.cache import embed_task
from echoic.evaluate.fit import resolve_device
from echoic.evaluate.metrics import check_metric_names, report_metrics
from echoic.evaluate.probes import ProbeConfig, run_probe
from echoic.evaluate.report import build_report
from echoic.evaluate.results import (
    format_table,
    jsonable,
    markdown_table,
    read_results,
    result_path,
    summarise,
    write_csv,
    write_result,
)
from echoic.evaluate.task import HearTask, find_tasks, load_task
from echoic.evaluate.units import UnitStore
from echoic.evaluate.zeroshot import DEFAULT_PROMPT, JointAudioModel, load_joint, run_zeroshot

ModelLike = str | EmbeddingModel | Callable[[], EmbeddingModel]


@dataclass
class EvalConfig:
    """Where results and embeddings go, and how probes run."""

    out: Path = Path("results")
    cache: Path | None = None  # default: <out>/cache
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    progress: bool = True
    report: bool = True
    threads: int | None = None  # torch threads for probes (None: 1 for linear/knn, else as is)
    resume: bool = True  # skip (model, task, protocol) results already in ``out`` with this config
    device: str = "auto"  # where MLP probes train: auto (a CUDA GPU if torch sees one), cpu, cuda
    jobs: int = 1  # MLP probe units trained in this many processes (CPU; see evaluate.units)
    prompt: str = DEFAULT_PROMPT  # zeroshot: the class prompt (evaluate.zeroshot)

    @property
    def cache_dir(self) -> Path:
        return Path(self.cache) if self.cache is not None else Path(self.out) / "cache"


def _load(model: ModelLike) -> tuple[str, EmbeddingModel]:
    if isinstance(model, str):
        from echoic.zoo.registry import resolve_model

        return model, resolve_model(model)
    if callable(model) and not hasattr(model, "embed"):
        built = model()
        return built.label, built
    embedding_model = cast(EmbeddingModel, model)  # it has ``embed`` (checked above)
    return embedding_model.label, embedding_model


def evaluate(
    models: Sequence[ModelLike],
    tasks: Sequence[str | Path],
    config: EvalConfig | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Evaluate every model on every task; returns the records written to ``config.out``.

    ``tasks``: task directories or folders of them (HEAR layout). Records of this run are
    returned; ``results.csv``, the printed table and ``report.html`` cover every record under
    ``config.out`` (so separate runs into one folder build one report).
    """
    config = config or EvalConfig()
    config = replace(config, device=resolve_device(config.device))
    if not (isinstance(config.jobs, int) and config.jobs >= 1):
        raise ConfigError(
            f"jobs must be an integer ≥ 1 (processes for probe units); found {config.jobs!r}"
        )
    task_list = [load_task(p) for p in find_tasks(list(tasks))]
    for t in task_list:
        check_metric_names(t.metrics)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    zeroshot = config.probe.protocol == "zeroshot"  # joint audio–text models only
    for model_like in models:
        try:
            name, model = load_joint(model_like) if zeroshot else _load(model_like)
        except Exception as err:
            from echoic.zoo.registry import ModelUnavailable

            if isinstance(err, ModelUnavailable):
                log(f"skipping {model_like}: {err}")
                continue
            raise
        identity = model.identity
        log(f"model {name}: {model.label} · {model.sample_rate} Hz · identity {identity}")
        for task in task_list:
            records.append(_one(name, model, identity, task, config, log))
        del model
        gc.collect()
    write_summary(out, config.report, log)
    return records


def write_summary(out: Path, report: bool = True, log: Callable[[str], None] = print) -> None:
    """``results.csv``, ``results.md``, the printed table and ``report.html`` of every record
    under ``out`` (every protocol's: probes, zeroshot, textretrieval)."""
    everything = read_results(out)
    write_csv(everything, out / "results.csv")
    (out / "results.md").write_text(markdown_table(everything) + "\n")
    log("")
    log(format_table(everything))
    if report and everything:
        path = build_report(everything, out)
        log(f"\nreport: {path.resolve()}")


def _one(
    name: str,
    model: EmbeddingModel,
    identity: str,
    task: HearTask,
    config: EvalConfig,
    log: Callable[[str], None],
) -> dict[str, Any]:
    done = result_path(config.out, name, task.name, config.probe.protocol)
    if config.resume and done.is_file():
        previous = json.loads(done.read_text())
        same = previous.get("identity") == identity and previous.get("config") == jsonable(
            asdict(config.probe)
        )
        if config.probe.protocol == "zeroshot":  # the prompt is part of the protocol
            same = same and previous.get("hparams", {}).get("prompt") == config.prompt
        if same and previous.get("task_key") == task.key:
            s = previous["scores"][previous["primary_metric"]]
            log(f"  {task.name:24s} {previous['primary_metric']} {s['mean']:.3f} (done earlier)")
            return previous
    emb = embed_task(model, task, config.cache_dir, identity, progress=config.progress, log=log)
    threads = torch.get_num_threads()
    # The linear and kNN probes run many tiny ops: a second thread only adds synchronisation, and
    # on a busy machine each op then waits for a descheduled thread (measured: the esc50_scenes
    # linear probe took 10 min with 2 threads beside another job, 20 s with 1).
    probe_threads = config.threads or (
        1 if config.probe.protocol in ("linear", "knn", "retrieval") else None
    )
    if probe_threads:
        torch.set_num_threads(probe_threads)
    # finished probe units of an interrupted run are kept beside the result, keyed by all that
    # defines the work; they are removed once the result is written
    store = UnitStore(
        done.parent / ".units" / f"{task.name}.{config.probe.protocol}-"
        f"{UnitStore.key(identity, asdict(config.probe), task.key)}"
    )
    if not config.resume:
        store.clear()
    start = time.perf_counter()
    try:
        if config.probe.protocol == "zeroshot":
            assert isinstance(model, JointAudioModel), "zeroshot needs a joint audio–text model"
            outcome = run_zeroshot(task, emb, model, config.prompt)
        else:
            outcome = run_probe(
                task,
                emb,
                config.probe,
                device=config.device,
                store=store,
                jobs=config.jobs,
                threads=probe_threads or 1,
                progress=config.progress,
            )
    finally:
        torch.set_num_threads(threads)
    probe_s = time.perf_counter() - start
    metrics = outcome.metrics or report_metrics(task.metrics, task.prediction_type, task.is_event)
    scores = summarise(outcome.runs, metrics)
    dim = next(iter(emb.splits.values())).x.shape[1]
    record: dict[str, Any] = {
        "model": name,
        "model_label": model.label,
        "identity": identity,
        "task": task.name,
        "task_path": str(task.path),
        "task_key": task.key,
        "protocol": config.probe.protocol,
        "primary_metric": metrics[0],
        "metrics": metrics,
        "scores": scores,
        "runs": outcome.runs,
        "hparams": outcome.hparams,
        "grid": outcome.grid,
        "config": asdict(config.probe),
        "embedding": {
            "dim": int(dim),
            "model_rate": emb.model_rate,
            "source_rate": emb.source_rate,
            "resampled": emb.model_rate != emb.source_rate,
            "cache": str(emb.directory),
        },
        "timings": {
            "embed_s": emb.embed_seconds,
            "embeddings_cached": emb.cached,
            "probe_s": probe_s,
            "probe_device": config.device,
        },
    }
    if outcome.confusion is not None:
        record["confusion"] = {"labels": task.vocabulary, "matrix": outcome.confusion}
    write_result(record, done)
    # this result replaces any earlier one, so units of any settings for it are obsolete
    for stale in store.directory.parent.glob(f"{task.name}.{config.probe.protocol}-*"):
        UnitStore(stale).clear()
    s = scores[metrics[0]]
    std = "" if s["std"] is None or math.isnan(s["std"]) else f" ± {s['std']:.3f}"
    log(
        f"  {task.name:24s} {metrics[0]} {s['mean']:.3f}{std} "
        f"({s['n']} runs; embed {emb.embed_seconds:.1f} s"
        f"{' cached' if emb.cached else ''}, probe {probe_s:.1f} s)"
    )
    return jsonable(record)
