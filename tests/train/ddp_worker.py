"""Run under ``torchrun --nproc_per_node 2``: train a tiny recipe with DDP (gloo on CPU) and save
each rank's objective state (student, heads, teacher) and first batch to ``OUT/rank<r>.pt``.

Usage: ``torchrun --nproc_per_node 2 ddp_worker.py RECIPE.yaml|none OUT [--section.key VALUE ...]``
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback


class FirstBatch(Callback):
    """Keeps the waveform of the first batch this rank trained on."""

    def __init__(self) -> None:
        self.waveform: torch.Tensor | None = None

    def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int) -> None:
        if self.waveform is None:
            self.waveform = batch["waveform"].detach().cpu().clone()


def main() -> None:
    from echoic.train.config import load_config
    from echoic.train.run import pretrain

    torch.set_num_threads(1)
    recipe, out = sys.argv[1], Path(sys.argv[2])
    config = load_config(None if recipe == "none" else recipe, sys.argv[3:])
    first = FirstBatch()
    result = pretrain(config, callbacks=[first], export=False)
    rank = result.trainer.global_rank
    state = {k: v.detach().cpu().clone() for k, v in result.module.objective.state_dict().items()}
    torch.save(
        {
            "state": state,
            "world_size": result.trainer.world_size,
            "global_step": result.trainer.global_step,
            "first_batch": first.waveform,
        },
        out / f"rank{rank}.pt",
    )


if __name__ == "__main__":
    main()
