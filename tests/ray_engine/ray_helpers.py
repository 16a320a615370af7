"""What the Ray tests share: a local Ray on the loopback address, a slowed model that records the
process id of every worker that builds it, audio with bad files, and row comparison."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from echoic.data.testing import make_good_files, make_odd_files
from echoic.embed.base import ClipEmbedding, EmbeddingModel
from echoic.zoo.registry import resolve_model


def start_local_ray() -> Any:
    """``ray`` initialised with 2 CPUs on 127.0.0.1, this module pickled by value for workers."""
    import ray
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
    )
    return ray


class Slow:
    """An embedding model that sleeps ``delay`` seconds per call (a worker to kill mid-run)."""

    def __init__(self, inner: EmbeddingModel, delay: float) -> None:
        self.inner = inner
        self.delay = delay

    def __getattr__(self, name: str) -> Any:  # label, identity, sample_rate, channels …
        return getattr(self.inner, name)

    def embed(
        self, waveforms: Sequence[Any], sample_rate: int | None = None
    ) -> list[ClipEmbedding]:
        time.sleep(self.delay)
        return self.inner.embed(waveforms, sample_rate)


def slow_model(model: str, delay: float, pid_dir: str, device: str) -> Slow:
    """The factory workers call: notes this process id in ``pid_dir``, builds the model."""
    Path(pid_dir).mkdir(parents=True, exist_ok=True)
    (Path(pid_dir) / str(os.getpid())).touch()
    return Slow(resolve_model(model, device=device), delay)


def slow_factory(model: str, delay: float, pid_dir: Path) -> Any:
    return partial(slow_model, model, delay, str(pid_dir))


def audio_with_bad_files(root: Path, good: int, seconds: float = 0.5) -> Path:
    """``good`` readable clips and the 20 awkward files of echoic.data.testing (about half bad)."""
    make_good_files(root / "good", good, seconds=seconds)
    make_odd_files(root / "odd")
    return root


def rows(path: Path) -> tuple[list[str], np.ndarray]:
    table = pq.read_table(path)
    embedding = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    return table.column("path").to_pylist(), embedding


def assert_same_rows(found: Path, expected: Path, tolerance: float = 1e-6) -> None:
    """The same set of ids (none lost, none twice) and, id by id, embeddings within tolerance.
    Row order is not compared: Ray writes parts in the order its workers finish them, and a
    resumed run appends the files it had left after the killed run's parts."""
    ids, values = rows(found)
    ref_ids, ref_values = rows(expected)
    assert len(ids) == len(set(ids)), "a row was written twice"
    assert sorted(ids) == sorted(ref_ids), (
        f"{len(set(ref_ids) - set(ids))} lost, {len(set(ids) - set(ref_ids))} extra"
    )
    order, ref_order = np.argsort(ids), np.argsort(ref_ids)
    assert float(np.abs(values[order] - ref_values[ref_order]).max()) <= tolerance


def leftovers(out: Path) -> list[Path]:
    """Temporary or part files left beside ``out`` (none after a finished run)."""
    parts = out.with_name(out.name + ".parts")
    found = list(out.parent.glob(f".{out.name}*"))
    return found + (list(parts.iterdir()) if parts.exists() else [])
