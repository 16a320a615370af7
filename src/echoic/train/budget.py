"""Stop a run after a CPU-time budget: equal-cost comparisons on a shared machine.

Wall-clock limits (Lightning's ``max_time``) are unfair when other jobs share the cores; the
CPU seconds a run has consumed are not. :class:`CpuBudget` counts the user + system CPU time of
the training process and its live children (DataLoader workers, read from ``/proc``; elsewhere
the process alone), keeps the count across resumes in the checkpoint, and asks the trainer to stop
once the budget is spent (after the current optimiser step).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

__all__ = ["CpuBudget", "process_tree_cpu_seconds"]

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            out += [int(c) for c in task.read_text().split()]
        except OSError:
            continue
    return out


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def process_tree_cpu_seconds() -> float:
    """CPU seconds of this process (exact) plus its live descendants (from /proc when present)."""
    total = time.process_time()
    if not Path("/proc/self/stat").exists():
        return total
    stack = _children(os.getpid())
    while stack:
        pid = stack.pop()
        total += _proc_cpu(pid)
        stack += _children(pid)
    return total


class CpuBudget(Callback):
    """Stop training once ``minutes`` of CPU time (this run, resumes included) are spent."""

    def __init__(self, minutes: float) -> None:
        self.limit_s = minutes * 60.0
        self.used_before_s = 0.0  # restored from a checkpoint
        self._start_s: float | None = None

    @property
    def used_s(self) -> float:
        if self._start_s is None:
            return self.used_before_s
        return self.used_before_s + process_tree_cpu_seconds() - self._start_s

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start_s = process_tree_cpu_seconds()

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        used = self.used_s
        pl_module = args[0] if args else None
        if pl_module is not None and trainer.logger:
            pl_module.log("cpu_minutes", used / 60.0, on_step=True, on_epoch=False)
        if used >= self.limit_s and not trainer.should_stop:
            trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        return {"used_s": self.used_s, "limit_s": self.limit_s}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.used_before_s = float(state_dict.get("used_s", 0.0))
