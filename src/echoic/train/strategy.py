"""``trainer.strategy`` → what the Lightning Trainer gets: the name itself, or for ``fsdp`` an
``FSDPStrategy`` built from ``trainer.fsdp`` (docs/scaling.md).

Why not Lightning's plain ``"fsdp"``: it wraps the whole module as one FSDP unit, so a student
encoder and its EMA teacher share one flat parameter and their shards do not line up, and an EMA
update (``torch._foreach_lerp_`` over both parameter lists, :func:`echoic.objectives.base.
ema_update`) would pair mismatched pieces. Wrapping every :class:`~echoic.encoders.base.Encoder`
(and, with ``wrap: block``, every :class:`~echoic.layers.Block`) gives student and teacher
identical units, hence identical shards.

Mixed precision under FSDP is autocast, as under DDP: FSDP keeps, gathers and reduces float32
parameters (``MixedPrecision()`` with no dtypes), and ``precision: bf16-mixed`` runs the matmuls
in bf16. Lightning's own FSDP bf16 setting would also cast every buffer and the module inputs to
bf16, including the waveform and the filterbank of the frontend, which must stay float32.
"""

from __future__ import annotations

from typing import Any

from echoic.errors import ConfigError
from echoic.train.config import TrainerConfig

__all__ = ["SHARDINGS", "WRAPS", "build_strategy", "resolve_accelerator"]

WRAPS = ("block", "encoder")
SHARDINGS = ("FULL_SHARD", "SHARD_GRAD_OP", "HYBRID_SHARD", "NO_SHARD")


def build_strategy(trainer: TrainerConfig) -> Any:
    """``trainer.strategy`` unchanged, or an ``FSDPStrategy`` for ``"fsdp"`` (built, not run:
    nothing here needs a GPU)."""
    if trainer.strategy != "fsdp":
        return trainer.strategy
    from lightning.pytorch.strategies import FSDPStrategy
    from torch.distributed.fsdp import MixedPrecision

    from echoic.encoders.base import Encoder
    from echoic.layers import Block

    f = trainer.fsdp
    if f.wrap not in WRAPS:
        raise ConfigError(f"trainer.fsdp.wrap must be one of {WRAPS}; found {f.wrap!r}.")
    if f.sharding not in SHARDINGS:
        raise ConfigError(
            f"trainer.fsdp.sharding must be one of {SHARDINGS}; found {f.sharding!r}."
        )
    units: set[type] = {Encoder, Block} if f.wrap == "block" else {Encoder}
    return FSDPStrategy(
        auto_wrap_policy=units,
        activation_checkpointing_policy={Block} if f.activation_checkpointing else None,
        sharding_strategy=f.sharding,  # type: ignore[arg-type]
        cpu_offload=f.cpu_offload,
        mixed_precision=MixedPrecision(),  # float32 shards; autocast does bf16 (module docstring)
        state_dict_type="full",  # one .ckpt file, loadable by --export-from and --resume
    )


def resolve_accelerator(trainer: TrainerConfig) -> str:
    """``trainer.accelerator``, with ``auto`` → ``gpu`` for FSDP (Lightning runs it on CUDA only;
    it refuses ``auto``)."""
    if trainer.strategy == "fsdp" and trainer.accelerator == "auto":
        return "gpu"
    return trainer.accelerator
