"""The CPU-time budget: counts child processes, stops a run early, survives a resume."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from train_helpers import noise_clips, tiny_mae_config

from echoic.train.budget import CpuBudget, process_tree_cpu_seconds
from echoic.train.run import pretrain


def test_cpu_of_a_live_child_process_is_counted() -> None:
    before = process_tree_cpu_seconds()
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\n"
    child = subprocess.Popen([sys.executable, "-c", busy + "time.sleep(30)"])
    try:
        deadline = time.monotonic() + 20
        seen = 0.0
        while time.monotonic() < deadline:
            seen = process_tree_cpu_seconds() - before
            if seen >= 0.55:
                break
            time.sleep(0.1)
        # this process only sleeps: the 0.6 CPU-s come from the child
        assert seen >= 0.55, seen
    finally:
        child.kill()
        child.wait()


def test_budget_state_carries_over_a_resume() -> None:
    budget = CpuBudget(minutes=1.0)
    budget.load_state_dict({"used_s": 50.0})
    assert budget.used_s == 50.0
    budget.on_train_start(None, None)  # type: ignore[arg-type]
    assert 50.0 <= budget.used_s < 51.0
    assert budget.state_dict()["limit_s"] == 60.0


def test_a_run_stops_when_its_cpu_budget_is_spent(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    audio = noise_clips(tmp_path / "audio", 4, 16000)
    out = tmp_path / "run"
    config = tiny_mae_config(
        out,
        audio,
        trainer__max_steps=100_000,
        trainer__max_cpu_minutes=0.02,  # 1.2 CPU seconds
        trainer__tensorboard=False,
    )
    start = time.process_time()
    result = pretrain(config, export=False)
    spent = time.process_time() - start
    steps = [json.loads(x)["step"] for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert 1 <= steps[-1] < 100_000
    assert result.trainer.global_step == steps[-1]
    assert spent >= 1.2  # it ran until the budget was spent, not less
