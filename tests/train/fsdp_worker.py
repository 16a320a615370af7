"""Run under ``torchrun --nproc_per_node 2 fsdp_worker.py OUT``: a few EAT steps of the tiny model
on CPU (gloo), wrapped three ways, each rank on its own clips and masks:

- ``ddp``: torch DDP, the reference;
- ``fsdp``: FSDP with the policy of ``build_strategy`` (``trainer.strategy: fsdp``), gradients
  clipped by FSDP's ``clip_grad_norm_``, AdamW groups from the names taken before wrapping;
- ``root``: FSDP wrapping the whole objective as one unit (Lightning's plain ``"fsdp"``);
- ``shapes``: ``fsdp``, but the AdamW groups read from the wrapped (1-D, sharded) parameters.

Rank 0 saves each mode's full state (student, heads, EMA teacher) or the error it raised to
``OUT/<mode>.pt``. Lightning runs FSDP on CUDA only, so this drives the objective directly: the
same pieces the Lightning module uses, minus the trainer.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.fsdp import FullStateDictConfig, StateDictType
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.nn.parallel import DistributedDataParallel as DDP

from echoic.train.config import load_config
from echoic.train.module import PretrainModule, parameter_groups
from echoic.train.strategy import build_strategy
from echoic.types import AudioBatch, TrainBatch

STEPS, CLIP = 3, 0.5
EAT = {"clone_batch": 2, "decoder_dim": 32, "decoder_layers": 1, "ema_decay": 0.5}


def batch(module: PretrainModule, rank: int, step: int) -> TrainBatch:
    generator = torch.Generator().manual_seed(1000 * rank + step)
    waveform = 0.1 * torch.randn(2, 8000, generator=generator)
    audio = AudioBatch(waveform, torch.full((2,), 8000), 16000)
    with torch.no_grad():
        features = module.frontend(audio)
    return TrainBatch(features, torch.arange(2), torch.zeros(2, dtype=torch.long))


def train(mode: str, rank: int) -> dict[str, torch.Tensor]:
    config = load_config(
        None,
        {"model.encoder": "vit_test", "objective.name": "eat", "objective.config": EAT,
         "trainer.strategy": "fsdp", "optim.weight_decay": 0.5},
    )  # fmt: skip
    torch.manual_seed(0)
    module = PretrainModule(config)
    objective = module.objective
    if mode == "ddp":
        wrapped: Any = DDP(objective)
    else:
        policy = (
            build_strategy(config.trainer).kwargs["auto_wrap_policy"] if mode != "root" else None
        )
        wrapped = FSDP(objective, auto_wrap_policy=policy, device_id=torch.device("cpu"),
                       use_orig_params=True)  # fmt: skip
    names = None if mode == "shapes" else module.no_decay
    groups = parameter_groups(objective, config.optim.weight_decay, names)
    optimizer = torch.optim.AdamW(groups, lr=1e-2)
    masks = torch.Generator().manual_seed(rank)
    for step in range(STEPS):
        loss = wrapped(batch(module, rank, step), masks).loss
        loss.backward()
        if mode == "ddp":
            torch.nn.utils.clip_grad_norm_(objective.parameters(), CLIP)
        else:
            wrapped.clip_grad_norm_(CLIP)
        optimizer.step()
        optimizer.zero_grad()
        objective.after_optimizer_step()  # the EMA teacher update
    if mode == "ddp":
        return {k: v.detach().clone() for k, v in objective.state_dict().items()}
    full = FullStateDictConfig(offload_to_cpu=False, rank0_only=True)  # True crashes on CPU
    with FSDP.state_dict_type(wrapped, StateDictType.FULL_STATE_DICT, full):
        return {k: v.detach().clone() for k, v in wrapped.state_dict().items()}


def main() -> None:
    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    for mode in ("ddp", "fsdp", "root", "shapes"):
        try:
            result: Any = train(mode, rank)
        except Exception as err:  # the root-only wrap may fail in the EMA update
            result = f"{type(err).__name__}: {err}"
        dist.barrier()
        if rank == 0:
            torch.save(result, out / f"{mode}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
