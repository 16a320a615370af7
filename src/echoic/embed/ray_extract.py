"""``echoic embed --engine ray``: the extraction of :mod:`echoic.embed.extract` on Ray Data.

files → ``ray.data.from_items`` (index, path) → ``map_batches`` with :class:`EmbedWorker`, a
stateful actor per worker that builds the model once (``num_gpus`` = ``gpus_per_worker``), reads
and embeds a batch of files and writes its rows as part files → the driver collects one status row
per file (written, or why it was skipped) and merges the parts into ``<out>``.

The semantics are the local path's, through the same functions (:mod:`echoic.embed.parts`,
:mod:`echoic.embed.extract`): the same rows (each clip is embedded on its own, so the batching does
not change them beyond float rounding), the same output order (parts are named after the index of
their first file), the same resume (a re-run skips every path already in ``<out>`` or a part), the
same per-file error reporting (never fatal) and errors CSV.

Faults: a batch's part files are named after the batch and written atomically, so a batch that Ray
Data retries after its worker died (it restarts dead actors and retries their batches, without
limit) rewrites the same files and a row is never lost or written twice; a killed driver leaves
finished parts that the next run keeps. A file that crashes its worker's process every time (a
decoder segfault) would be retried without end: the local engine would stop at it instead. On a
cluster, the audio and ``<out>`` must be on a filesystem every node sees.

Ray is optional: ``pip install 'echoic[ray]'``.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from tqdm import tqdm

from echoic.embed.base import EmbeddingModel
from echoic.embed.extract import (
    ExtractReport,
    _embed_rows,
    _finish_run,
    _load_one,
    _prepare_run,
)
from echoic.embed.parts import Row, atomic_parquet, next_part_number, parts_dir, rows_table
from echoic.errors import ConfigError, EchoicError

__all__ = ["RAY_INSTALL", "EmbedWorker", "ModelFactory", "RayConfig", "extract_ray", "import_ray"]

RAY_INSTALL = "pip install 'echoic[ray]'"
ModelFactory = Callable[[str], EmbeddingModel]
"""``factory(device)`` → the embedding model on ``device``; pickled to every worker (cloudpickle),
so it must be importable there or defined in ``__main__``."""


@dataclass
class RayConfig:
    """Where and how wide the Ray job runs."""

    address: str | None = None  # None: a local Ray on this machine; "auto" / "ray://…": a cluster
    num_workers: int = 2  # actors, each holding one copy of the model
    gpus_per_worker: float = 0.0  # > 0: each actor gets this share of a GPU and embeds on CUDA
    cpus_per_worker: float = 1.0  # also the actor's torch threads (rounded down, at least 1)
    files_per_batch: int = 16  # files per map_batches call (one part file or more each)

    def __post_init__(self) -> None:
        if not (isinstance(self.num_workers, int) and self.num_workers >= 1):
            raise ConfigError(f"num_workers must be an integer ≥ 1; found {self.num_workers!r}")
        if self.gpus_per_worker < 0 or self.cpus_per_worker <= 0:
            raise ConfigError(
                f"gpus_per_worker must be ≥ 0 and cpus_per_worker > 0; found "
                f"{self.gpus_per_worker}, {self.cpus_per_worker}"
            )
        if self.files_per_batch < 1:
            raise ConfigError(f"files_per_batch must be ≥ 1; found {self.files_per_batch}")

    def worker_device(self, device: str | None) -> str:
        """The device each actor embeds on: CUDA exactly when it is given GPUs."""
        if self.gpus_per_worker > 0:
            if device not in (None, "auto", "cuda"):
                raise ConfigError(
                    f"--gpus-per-worker {self.gpus_per_worker} gives every Ray worker a GPU, but "
                    f"--device is {device!r}; leave --device out (or 'cuda': Ray assigns each "
                    "worker its GPU)"
                )
            return "cuda"
        if device not in (None, "auto", "cpu"):
            raise ConfigError(
                f"--device {device!r} with --engine ray needs GPUs for the workers: add "
                "--gpus-per-worker 1 (or a share such as 0.5)"
            )
        return "cpu"


LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray's switch for single-machine mode: at "0" every Ray process of a local Ray binds and reports
127.0.0.1 (by default Ray replaces 127.0.0.1 with the machine's network address and listens on
every interface). Read when ``ray`` is imported, and inherited by the processes Ray starts."""


def import_ray(local: bool = False) -> ModuleType:
    """``ray`` with Ray Data imported, or an :class:`EchoicError` saying how to install it.

    ``local``: this process will start a local Ray, so keep it on the loopback address (only
    effective when ``ray`` was not imported yet; see :data:`LOOPBACK_ONLY`)."""
    if local and "ray" not in sys.modules:
        os.environ.setdefault(LOOPBACK_ONLY, "0")
    try:
        import ray
        import ray.data
    except ImportError as err:
        raise EchoicError(
            f"--engine ray needs Ray Data, which is not installed here ({err}); install it with: "
            f"{RAY_INSTALL}, or use the local engine (leave --engine out)"
        ) from err
    return ray


class EmbedWorker:
    """One Ray actor: the model, built once, and :meth:`__call__` over batches of files."""

    def __init__(
        self,
        factory: ModelFactory,
        device: str,
        identity: str,
        out: str,
        schema: pa.Schema,
        run_number: int,
        timestamps: bool,
        max_duration_s: float | None,
        threads: int,
        flush_bytes: int,
        max_group_s: float = 600.0,
    ) -> None:
        torch.set_num_threads(max(1, threads))
        self.embedder = factory(device)
        if self.embedder.identity != identity:
            raise EchoicError(
                f"a Ray worker built model {self.embedder.identity}, the driver {identity}: the "
                "worker's environment differs (package versions, model files); install the same "
                "echoic and models on every node"
            )
        self.out = Path(out)
        self.parts = parts_dir(self.out)
        self.schema = schema
        self.run_number = run_number
        self.timestamps = timestamps
        self.max_duration_s = max_duration_s
        self.flush_bytes = flush_bytes
        self.max_group_samples = max_group_s * self.embedder.sample_rate

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Embed one batch (``index``, ``path`` columns), write its part files, and return a
        status row per file: ``index``, ``path``, ``error`` ("" when written), ``converted``
        (kinds joined by newlines), ``audio_s``."""
        indices = [int(i) for i in batch["index"]]
        paths = [str(p) for p in batch["path"]]
        report = ExtractReport(out=self.out)
        converted: dict[int, list[str]] = {}
        groups: list[list[tuple[str, np.ndarray]]] = [[]]
        samples = 0
        keys: dict[int, str] = {}
        for index, path in zip(indices, paths, strict=True):
            before = Counter(report.converted)
            loaded = _load_one(Path(path), self.embedder, report, self.max_duration_s)
            converted[index] = sorted((report.converted - before).keys())
            if loaded is None:
                continue
            keys[index] = loaded[0]
            n = int(loaded[1].shape[-1])
            if groups[-1] and samples + n > self.max_group_samples:
                groups.append([])
                samples = 0
            groups[-1].append(loaded)
            samples += n
        rows: list[Row] = []
        durations: dict[str, float] = {}
        flushes = 0
        for group in groups:
            rows += _embed_rows(self.embedder, group, report, self.timestamps)
            group.clear()
            if rows and sum(r.nbytes for r in rows) >= self.flush_bytes:
                durations.update(self._write(rows, indices[0], flushes))
                rows, flushes = [], flushes + 1
        if rows:
            durations.update(self._write(rows, indices[0], flushes))
        causes = dict(report.errors)
        errors = [
            ""
            if keys.get(index) in durations
            else causes.get(path, causes.get(keys.get(index, ""), "not embedded"))
            for index, path in zip(indices, paths, strict=True)
        ]
        return {
            "index": np.asarray(indices, np.int64),
            "path": np.asarray(paths, object),
            "error": np.asarray(errors, object),
            "converted": np.asarray(["\n".join(converted[i]) for i in indices], object),
            "audio_s": np.asarray([durations.get(keys.get(i, ""), 0.0) for i in indices]),
        }

    def _write(self, rows: list[Row], first_index: int, flush: int) -> dict[str, float]:
        """One part file, named after this run and the batch's first file (a retried batch
        rewrites the same name); returns the seconds of audio of each written path."""
        name = f"part-{self.run_number:06d}-{first_index:09d}-{flush:03d}.parquet"
        atomic_parquet(rows_table(rows, self.schema), self.parts / name, self.schema)
        return {r.path: r.duration_s for r in rows}


def _init_ray(ray: ModuleType, config: RayConfig) -> bool:
    """Connect to (or start) Ray; True when this call started it (and must shut it down)."""
    if ray.is_initialized():
        return False
    if config.address is None:  # a local Ray on this machine (loopback: see import_ray)
        needed = int(np.ceil(config.num_workers * config.cpus_per_worker))
        ray.init(
            num_cpus=max(os.cpu_count() or 1, needed),
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
        )
    else:
        ray.init(address=config.address, include_dashboard=False)
    return True


def extract_ray(
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    factory: ModelFactory,
    timestamps: bool = False,
    max_duration_s: float | None = None,
    config: RayConfig | None = None,
    device: str | None = None,
    progress: bool = True,
    flush_bytes: int = 64 << 20,
) -> ExtractReport:
    """:func:`echoic.embed.extract.extract` on Ray (see module docstring).

    ``factory(device)`` builds the model: once here on the CPU (identity, schema; it embeds
    nothing) and once in every worker on its device (:meth:`RayConfig.worker_device`). Uses the
    running Ray if there is one, else starts one (``config.address``) and shuts it down after.
    """
    config = config or RayConfig()
    worker_device = config.worker_device(device)
    ray = import_ray(local=config.address is None)
    start = time.perf_counter()
    report = ExtractReport(out=Path(out))
    driver_model = factory("cpu")
    schema, todo = _prepare_run(paths, report.out, driver_model, timestamps, report)
    identity = driver_model.identity
    del driver_model
    if todo:
        started = _init_ray(ray, config)
        try:
            _run(ray, todo, report, factory, worker_device, identity, schema, timestamps,
                 max_duration_s, config, progress, flush_bytes)  # fmt: skip
        finally:
            if started:
                ray.shutdown()
    _finish_run(report, schema)
    report.wall_s = time.perf_counter() - start
    return report


def _run(
    ray: ModuleType,
    todo: list[Path],
    report: ExtractReport,
    factory: ModelFactory,
    device: str,
    identity: str,
    schema: pa.Schema,
    timestamps: bool,
    max_duration_s: float | None,
    config: RayConfig,
    progress: bool,
    flush_bytes: int,
) -> None:
    """Embed ``todo`` on the actor pool, filling ``report`` from the workers' status rows."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # one bar: ours, per file
    context.enable_operator_progress_bars = False
    size = config.files_per_batch
    items = [{"index": i, "path": str(path)} for i, path in enumerate(todo)]
    blocks = max(min(len(items), config.num_workers), -(-len(items) // size))
    dataset = ray.data.from_items(items, override_num_blocks=blocks)
    kwargs: dict[str, Any] = {
        "factory": factory,
        "device": device,
        "identity": identity,
        "out": str(report.out),
        "schema": schema,
        "run_number": next_part_number(parts_dir(report.out)),
        "timestamps": timestamps,
        "max_duration_s": max_duration_s,
        "threads": int(config.cpus_per_worker),
        "flush_bytes": flush_bytes,
    }
    mapped = dataset.map_batches(
        EmbedWorker,
        fn_constructor_kwargs=kwargs,
        batch_size=size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=config.num_workers),
        num_cpus=config.cpus_per_worker,
        num_gpus=config.gpus_per_worker or None,
    )  # Ray Data restarts a dead actor and retries its batches (max_restarts=-1 by default)
    statuses: dict[int, tuple[str, str, str, float]] = {}
    with tqdm(total=len(todo), desc="embed (ray)", unit="file", disable=not progress) as bar:
        for batch in mapped.iter_batches(batch_size=None, batch_format="numpy"):
            for index, path, error, converted, audio_s in zip(
                batch["index"], batch["path"], batch["error"], batch["converted"],
                batch["audio_s"], strict=True,
            ):  # fmt: skip
                statuses[int(index)] = (str(path), str(error), str(converted), float(audio_s))
            bar.update(len(batch["index"]))
    for index in sorted(statuses):  # a retried batch reports twice: each file counts once
        path, error, converted, audio_s = statuses[index]
        if error:
            report.errors.append((path, error))
        else:
            report.written += 1
            report.audio_s += audio_s
        report.converted.update(kind for kind in converted.split("\n") if kind)
