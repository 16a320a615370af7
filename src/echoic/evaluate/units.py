"""Probe work in units: each unit is saved when it finishes, and units can run in parallel.

A probe run (one model on one task) is hours of CPU on the large tasks. It is cut into units —
one fold's probes for one set of grid points, with all seeds — whose results are small JSON
files in a :class:`UnitStore`. A run that is stopped keeps its finished units; the next run with
the same model, task and probe settings trains only the rest. With ``jobs > 1`` the units of a
stage train in that many worker processes, one torch thread each (forked, so the embeddings are
shared, not copied); the stage's units are independent because every probe's initialisation,
dropout masks and data order depend on its own spec and fold only
(:func:`echoic.evaluate.mlp.dropout_seed`).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from echoic.evaluate.results import jsonable, write_result

PARALLEL_PROTOCOLS = ("hear", "hear-fast", "linear")
"""Protocols trained in several independent units (grid points, folds): worth a process each."""


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def auto_jobs(protocol: str, cap: int = 8) -> int:
    """``--jobs auto``: one probe process per usable core (at most ``cap``) for the protocols in
    :data:`PARALLEL_PROTOCOLS`, else 1 (measured: two 1-thread processes finish the HEAR grid
    1.93× sooner than one 2-thread process, same CPU seconds; on a GPU the runner uses one)."""
    if protocol not in PARALLEL_PROTOCOLS:
        return 1
    return max(1, min(cap, usable_cores()))


@dataclass(frozen=True)
class Unit:
    """One fold's probes for ``points`` (indices into the stage's grid), with ``seeds`` (None:
    all of the run's seeds)."""

    fold: int
    points: tuple[int, ...]
    stage: int = 0
    seeds: tuple[int, ...] | None = None

    @property
    def name(self) -> str:
        name = f"s{self.stage}-f{self.fold}-p{'_'.join(map(str, self.points))}"
        return name if self.seeds is None else f"{name}-s{'_'.join(map(str, self.seeds))}"


class UnitStore:
    """Finished units of one (model, task, probe settings), one JSON file each."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @staticmethod
    def key(*parts: Any) -> str:
        """A short digest of whatever defines the work (identity, probe config, task key)."""
        text = json.dumps(jsonable(list(parts)), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _path(self, unit: Unit) -> Path:
        return self.directory / f"{unit.name}.json"

    def get(self, unit: Unit) -> dict[str, Any] | None:
        path = self._path(unit)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):  # a torn write cannot happen (os.replace), but
            return None  # a damaged file is redone rather than trusted

    def put(self, unit: Unit, result: dict[str, Any]) -> None:
        write_result(result, self._path(unit))  # atomic, like a result record

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


# The work function of the current parallel stage. Forked workers inherit it (and the embeddings
# it closes over) instead of receiving a pickled copy.
_WORK: Callable[[Unit], dict[str, Any]] | None = None


def _worker_init(threads: int) -> None:
    torch.set_num_threads(threads)


def _call(unit: Unit) -> dict[str, Any]:
    assert _WORK is not None, "unit worker started without work (needs the fork start method)"
    return _WORK(unit)


def run_units(
    units: Sequence[Unit],
    work: Callable[[Unit], dict[str, Any]],
    store: UnitStore | None = None,
    jobs: int = 1,
    threads: int = 1,
    progress: bool = False,
    desc: str = "probes",
) -> dict[Unit, dict[str, Any]]:
    """Results of every unit: from ``store`` where finished, else computed (and stored).

    ``jobs > 1`` runs the missing units in that many forked processes with ``threads`` torch
    threads each; where fork is unavailable (or one unit is left) they run here, one by one.
    """
    global _WORK
    done: dict[Unit, dict[str, Any]] = {}
    todo = []
    for unit in units:
        found = store.get(unit) if store is not None else None
        if found is not None:
            done[unit] = found
        else:
            todo.append(unit)
    bar = tqdm(total=len(units), initial=len(done), desc=desc, unit="unit", disable=not progress)

    def finish(unit: Unit, result: dict[str, Any]) -> None:
        if store is not None:
            store.put(unit, result)
        done[unit] = result
        bar.update(1)

    forkable = "fork" in multiprocessing.get_all_start_methods()
    try:
        if jobs > 1 and len(todo) > 1 and forkable:
            _WORK = work
            ctx = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(
                min(jobs, len(todo)), mp_context=ctx, initializer=_worker_init, initargs=(threads,)
            ) as pool:
                futures = {pool.submit(_call, u): u for u in todo}
                error: BaseException | None = None
                for fut in as_completed(futures):
                    try:
                        finish(futures[fut], fut.result())
                    except Exception as err:  # keep what the other workers finish
                        if error is None:
                            error = err
                            for other in futures:
                                other.cancel()
                if error is not None:
                    raise error
        else:
            for unit in todo:
                finish(unit, work(unit))
    finally:
        _WORK = None
        bar.close()
    return {u: done[u] for u in units}
