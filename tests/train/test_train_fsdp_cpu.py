"""``trainer.strategy: fsdp`` without a GPU: the strategy built from a recipe, and two real CPU
processes (torchrun, gloo) stepping the EAT objective under that FSDP wrapping exactly as DDP
does. Lightning itself runs FSDP on CUDA only; the GPU run is scripts/gpu_probes/device_check.py
--pretrain-smoke (docs/scaling.md)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lightning.pytorch.strategies import FSDPStrategy
from torch.distributed.fsdp import MixedPrecision

from echoic.encoders.base import Encoder
from echoic.errors import ConfigError
from echoic.layers import Block
from echoic.train.config import load_config
from echoic.train.strategy import build_strategy, resolve_accelerator

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "pretrain"
WORKER = Path(__file__).resolve().parent / "fsdp_worker.py"


def test_the_fsdp_recipe_builds_a_per_block_strategy() -> None:
    trainer = load_config(CONFIGS / "eat_base_fsdp.yaml").trainer
    strategy = build_strategy(trainer)
    assert isinstance(strategy, FSDPStrategy)
    policy = strategy.kwargs["auto_wrap_policy"]
    assert set(policy._module_classes) == {Encoder, Block}
    assert strategy.kwargs["use_orig_params"] is True
    assert strategy.sharding_strategy.name == "FULL_SHARD"
    # float32 shards, gathers and reductions: bf16 comes from autocast (precision: bf16-mixed)
    assert strategy.mixed_precision == MixedPrecision()
    assert trainer.precision == "bf16-mixed" and resolve_accelerator(trainer) == "gpu"


def test_other_strategies_pass_through_and_bad_fsdp_settings_are_named() -> None:
    assert build_strategy(load_config(None, {"trainer.strategy": "ddp"}).trainer) == "ddp"
    auto = load_config(None, {"trainer.strategy": "fsdp"}).trainer
    assert auto.accelerator == "auto" and resolve_accelerator(auto) == "gpu"
    with pytest.raises(ConfigError, match=r"trainer\.fsdp\.wrap must be one of"):
        build_strategy(
            load_config(None, {"trainer.strategy": "fsdp", "trainer.fsdp.wrap": "x"}).trainer
        )
    with pytest.raises(ConfigError, match="'sharding'"):
        load_config(None, {"trainer.fsdp.shard": "FULL_SHARD"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_fsdp_steps_equal_ddp_steps_on_two_cpu_ranks(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           f"--master_port={free_port()}", str(WORKER), str(tmp_path)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ddp, fsdp = (torch.load(tmp_path / f"{m}.pt", weights_only=True) for m in ("ddp", "fsdp"))
    assert ddp.keys() == fsdp.keys() and any(k.startswith("ema.") for k in ddp)
    for key in ddp:  # student, decoder, and the EMA teacher: as under DDP
        assert torch.allclose(ddp[key], fsdp[key], atol=1e-6), key
    # controls: one FSDP unit for the whole objective breaks the EMA update ...
    assert "must match the size" in torch.load(tmp_path / "root.pt", weights_only=True)
    # ... and weight-decay groups read from the sharded (1-D) parameters change the result
    shapes = torch.load(tmp_path / "shapes.pt", weights_only=True)
    assert max(float((ddp[k] - shapes[k]).abs().max()) for k in ddp) > 1e-4
