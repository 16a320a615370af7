"""What the fault tests (and ``benchmarks/fault_soak.py``) share: starting ``echoic`` in a child
process (slowed, to be killed mid-run), waiting for a state on disk, and the invariants of each
job: the rows of an embedding output, the steps and checkpoints of a pretraining run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "fault_driver.py"


# ----------------------------------------------------------------------------- processes
def start(verb: str, args: list[str], delay: float = 0.0) -> subprocess.Popen[str]:
    """``echoic VERB ARGS`` in a child process; ``delay`` > 0 slows each batch / step (driver)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    if delay > 0:
        cmd = [sys.executable, str(DRIVER), str(delay), verb, *args]
    else:
        cmd = [sys.executable, "-m", "echoic.cli.main", verb, *args]
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def run(verb: str, args: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``echoic VERB ARGS`` to the end, in a child process."""
    proc = start(verb, args)
    out, _ = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def wait_for(
    condition: Callable[[], bool], proc: subprocess.Popen[str] | None = None, timeout: float = 120
) -> bool:
    """Poll ``condition`` until it holds (True) or ``proc`` ends first (False)."""
    end = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            return False
        if time.monotonic() > end:
            raise TimeoutError(f"waited {timeout} s for {condition}")
        time.sleep(0.02)
    return True


def output(proc: subprocess.Popen[str]) -> str:
    out, _ = proc.communicate(timeout=60)
    return out or ""


# ----------------------------------------------------------------------------- embedding
def parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def parts(out: Path) -> list[Path]:
    folder = parts_dir(out)
    return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []


def leftovers(out: Path) -> list[Path]:
    """Temporary or part files beside ``out`` (none once a run has finished)."""
    hidden = list(out.parent.glob(f".{out.name}*"))
    folder = parts_dir(out)
    return hidden + (list(folder.iterdir()) if folder.exists() else [])


def rows(path: Path) -> dict[str, np.ndarray]:
    """path → scene embedding; a path written twice fails."""
    table = pq.read_table(path, columns=["path", "embedding"])
    ids = table.column("path").to_pylist()
    assert len(ids) == len(set(ids)), f"{path}: {len(ids) - len(set(ids))} row(s) written twice"
    values = table.column("embedding").to_numpy(zero_copy_only=False)
    return dict(zip(ids, (np.asarray(v) for v in values), strict=True))


def rows_lost(found: Path, expected: Path, tolerance: float = 1e-6) -> int:
    """Rows of ``expected`` missing from ``found``; fails on an extra row or a different value."""
    got, want = rows(found), rows(expected)
    extra = set(got) - set(want)
    assert not extra, f"{len(extra)} row(s) not in the undisturbed run, e.g. {sorted(extra)[:2]}"
    for key in set(got) & set(want):
        diff = float(np.abs(got[key] - want[key]).max())
        assert diff <= tolerance, f"{key}: max |diff| {diff} > {tolerance}"
    return len(set(want) - set(got))


def embed_args(model: Path, audio: Path, out: Path) -> list[str]:
    return [str(audio), "--model", str(model), "--out", str(out), "--quiet", "--threads", "1"]


# ----------------------------------------------------------------------------- pretraining
def tiny_recipe(path: Path, audio: Path, out: Path, steps: int, every: int) -> Path:
    """A YAML recipe: vit_test + EAT (an EMA teacher: its state must resume too), 0.5-s crops."""
    from echoic.train.config import dump_config, load_config

    eat = {"clone_batch": 2, "decoder_dim": 32, "decoder_layers": 1, "ema_decay": 0.9}
    config = load_config(
        None,
        {
            "output_dir": str(out),
            "model.encoder": "vit_test",
            "objective.name": "eat",
            "objective.config": eat,
            "data.train": [str(audio)],
            "data.crop_s": 0.5,
            "data.batch_size": 2,
            "data.num_workers": 0,
            "optim.lr": 1e-3,
            "optim.warmup_steps": 1,
            "trainer.max_steps": steps,
            "trainer.checkpoint_every_n_steps": every,
            "trainer.accelerator": "cpu",
            "trainer.progress_bar": False,
            "trainer.tensorboard": False,
            "trainer.threads": 1,
        },
    )
    path.write_text(dump_config(config))
    return path


def step_log(out: Path) -> list[dict[str, Any]]:
    """The rows of ``train_log.jsonl`` (a line cut short by a kill is left out)."""
    path = out / "train_log.jsonl"
    found = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            found.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return found


def logged_steps(out: Path) -> int:
    return max((int(r["step"]) for r in step_log(out)), default=0)


def losses(out: Path) -> dict[int, float]:
    """step → loss; a step logged twice fails."""
    log = step_log(out)
    steps = [int(r["step"]) for r in log]
    assert len(steps) == len(set(steps)), f"steps logged twice: {sorted(steps)}"
    return {int(r["step"]): float(r["loss"]) for r in log}


def checkpoint_step(path: Path) -> int:
    """The optimiser step of a checkpoint (it must load)."""
    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


def checkpoint_leftovers(out: Path) -> list[Path]:
    folder = out / "checkpoints"
    return sorted(folder.glob(".*")) if folder.is_dir() else []


def steps_lost(found: Path, expected: Path, tolerance: float = 1e-6) -> int:
    """Steps of ``expected``'s log missing from ``found``'s; fails if a shared step's loss
    differs (a resumed run is bit-exact) or a step is logged twice."""
    got, want = losses(found), losses(expected)
    for step in set(got) & set(want):
        assert abs(got[step] - want[step]) <= tolerance, (step, got[step], want[step])
    return len(set(want) - set(got))
