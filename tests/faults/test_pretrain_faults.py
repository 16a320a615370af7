"""Faults of ``echoic pretrain``: SIGTERM and kill -9 mid-run, a full disk while checkpointing, a
truncated checkpoint. After each, the checkpoint on disk loads, the run resumes (``--resume
auto``) to the full step count, and every step's loss equals that of an undisturbed run (resuming
is bit-exact: docs/pretraining.md), each step logged once.
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

import pytest
import torch
from fault_helpers import (
    checkpoint_leftovers,
    checkpoint_step,
    logged_steps,
    output,
    start,
    steps_lost,
    tiny_recipe,
    wait_for,
)
from lightning.pytorch.callbacks import Callback

from conftest import EVERY, STEPS
from echoic.errors import CheckpointError, DiskFullError
from echoic.train.checkpoints import find_resume
from echoic.train.config import load_config
from echoic.train.run import pretrain

DELAY = 0.4  # seconds per step in the slowed child


def resume_and_check(recipe: Path, out: Path, reference_run: Path) -> None:
    """``--resume auto`` to the end: every step there once, each loss as undisturbed."""
    result = pretrain(load_config(recipe), resume="auto", export=False)
    assert result.trainer.global_step == STEPS
    assert checkpoint_step(out / "checkpoints" / "last.ckpt") == STEPS
    assert steps_lost(out, reference_run) == 0
    assert checkpoint_leftovers(out) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_a_killed_pretrain_resumes_to_the_same_steps(
    train_audio: Path, reference_run: Path, tmp_path: Path, sig: int
) -> None:
    out = tmp_path / "run"
    recipe = tiny_recipe(tmp_path / "recipe.yaml", train_audio, out, STEPS, EVERY)
    child = start("pretrain", ["--config", str(recipe)], delay=DELAY)
    try:
        reached = wait_for(lambda: logged_steps(out) >= EVERY + 1, child)
        os.kill(child.pid, sig)
        log = output(child)
    finally:
        child.kill()
    assert reached, f"the run ended before it was killed:\n{log[-3000:]}"
    last = out / "checkpoints" / "last.ckpt"
    saved = checkpoint_step(last)  # it loads
    if sig == signal.SIGTERM:  # Lightning stops at the end of the step; last.ckpt is that step
        assert child.returncode == 143, log[-3000:]
        assert f"stopped by SIGTERM after step {saved}" in log
        assert saved == logged_steps(out) > EVERY  # not a step lost
    else:  # the newest periodic checkpoint; the steps after it are done again
        assert child.returncode == -signal.SIGKILL
        assert saved % EVERY == 0 and EVERY <= saved <= logged_steps(out)
    assert saved < STEPS  # a kill -9 mid-save may leave a temporary file: the resume removes it
    assert all(p.name.endswith(".tmp") for p in checkpoint_leftovers(out))
    resume_and_check(recipe, out, reference_run)


class StopAfter(Callback):
    """Ends the fit after optimiser step ``k`` (as a crash would, minus the crash)."""

    def __init__(self, k: int) -> None:
        self.k = k

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step >= self.k:
            trainer.should_stop = True


def test_a_full_disk_while_checkpointing_keeps_the_earlier_checkpoints(
    train_audio: Path, reference_run: Path, tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "run"
    recipe = tiny_recipe(tmp_path / "recipe.yaml", train_audio, out, STEPS, EVERY)
    save = torch.save
    calls = {"n": 0}

    def fills_the_disk(obj, f, *args, **kwargs) -> None:  # the third save (step 4) fills it
        calls["n"] += 1
        if calls["n"] == 3:
            f.write(b"PK\x03\x04" + b"\0" * 1000)  # a partial write, then the device is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", fills_the_disk)
    with pytest.raises(DiskFullError, match=r"no space left.*earlier checkpoints .* are intact"):
        pretrain(load_config(recipe), export=False)
    monkeypatch.undo()
    folder = out / "checkpoints"
    assert checkpoint_step(folder / "last.ckpt") == checkpoint_step(folder / "step=00000002.ckpt")
    assert checkpoint_leftovers(out) == [] and not (folder / "step=00000004.ckpt").exists()
    resume_and_check(recipe, out, reference_run)  # space freed


def test_truncated_checkpoints_are_moved_aside_and_the_run_resumes(
    train_audio: Path, reference_run: Path, tmp_path: Path, caplog
) -> None:
    out = tmp_path / "run"
    recipe = tiny_recipe(tmp_path / "recipe.yaml", train_audio, out, STEPS, EVERY)
    pretrain(load_config(recipe), callbacks=[StopAfter(4)], export=False)
    folder = out / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == [
        "last.ckpt", "step=00000002.ckpt", "step=00000004.ckpt"
    ]  # fmt: skip
    for name in ("last.ckpt", "step=00000004.ckpt"):  # cut short (a disk, a copy, a crash)
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 3])
    (folder / ".last.ckpt.abc123.tmp").write_bytes(b"half")  # a killed writer's temporary file

    with pytest.raises(CheckpointError, match=r"does not load as a checkpoint.*--resume auto"):
        find_resume(out, str(folder / "last.ckpt"))
    with caplog.at_level("WARNING", logger="echoic.train.checkpoints"):
        resume_and_check(recipe, out, reference_run)  # from step 2: steps 3..8 done again
    moved = sorted(p.name for p in folder.glob("*.corrupt"))
    assert moved == ["last.ckpt.corrupt", "step=00000004.ckpt.corrupt"]
    assert "last.ckpt does not load" in caplog.text
