"""``pretrain(config)``: build the module and the Lightning trainer, fit, checkpoint, export.

Output layout under ``config.output_dir``::

    config.yaml              resolved recipe (objective / encoder / frontend configs expanded)
    train_log.jsonl          one row per optimiser step: step, loss, lr, skipped files, ...
    tb/                      TensorBoard logs
    checkpoints/             step=NNNNNNNN.ckpt every N steps + last.ckpt (atomic writes)
    model/                   the exported echoic model directory (or config.export_dir)
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from echoic.config import to_dict
from echoic.errors import ConfigError
from echoic.train.budget import CpuBudget
from echoic.train.checkpoints import (
    LAST,
    AtomicCheckpointIO,
    CheckpointOnSigterm,
    clean_stale_tmp,
    find_resume,
)
from echoic.train.config import PretrainConfig, dump_config
from echoic.train.data import data_hash, list_clips
from echoic.train.export import export_checkpoint
from echoic.train.module import PretrainModule
from echoic.train.paired import list_paired_clips, paired_hash
from echoic.train.strategy import build_strategy, resolve_accelerator

__all__ = ["AtomicCheckpointIO", "PretrainResult", "pretrain", "resolve_precision"]

log = logging.getLogger(__name__)


@dataclass
class PretrainResult:
    """What a run left behind (on every rank; ``export_dir`` is None on ranks > 0)."""

    module: PretrainModule
    trainer: L.Trainer
    last_checkpoint: Path
    export_dir: Path | None
    data_hash: str
    skipped_files: list[str]


def resolve_precision(precision: str, accelerator: str) -> str:
    """``"auto"`` → ``bf16-mixed`` on a CUDA GPU with bf16 support, else ``32-true`` (CPU)."""
    if precision != "auto":
        return precision
    gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return "bf16-mixed" if gpu and torch.cuda.is_bf16_supported() else "32-true"


def _logger(config: PretrainConfig) -> Any:
    if not config.trainer.tensorboard:
        return False
    try:
        from lightning.pytorch.loggers import TensorBoardLogger

        return TensorBoardLogger(save_dir=config.output_dir, name="tb", version="")
    except ModuleNotFoundError:  # tensorboard not installed
        from lightning.pytorch.loggers import CSVLogger

        log.warning("tensorboard is not installed; logging to CSV instead")
        return CSVLogger(save_dir=config.output_dir, name="csv", version="")


def resolved_config(config: PretrainConfig, module: PretrainModule) -> PretrainConfig:
    """``config`` with the objective / encoder / frontend configs expanded to every field."""
    model = dataclasses.replace(
        config.model,
        encoder_config=dict(module.model_config.encoder_config),
        frontend_config=dict(module.model_config.frontend_config),
    )
    objective = dataclasses.replace(config.objective, config=to_dict(module.objective.config))
    return dataclasses.replace(config, model=model, objective=objective)


def pretrain(
    config: PretrainConfig,
    resume: str | None = None,
    callbacks: Sequence[Callback] = (),
    export: bool = True,
    strategy: Any = None,
) -> PretrainResult:
    """Train ``config`` (resuming from ``resume``: a ``.ckpt`` path or ``"auto"``), then write
    ``checkpoints/last.ckpt`` and export the student encoder as an echoic model directory.

    callbacks: extra Lightning callbacks. strategy: a Lightning ``Strategy`` object that replaces
    ``config.trainer.strategy`` (by default :func:`~echoic.train.strategy.build_strategy`).

    Faults (:mod:`echoic.train.checkpoints`): on SIGTERM the run saves ``last.ckpt`` at the end of
    the current step and exits with status 143 (``SystemExit``); ``resume="auto"`` takes the
    newest checkpoint that loads, moving damaged ones aside.
    """
    if config.stages:  # an iteration recipe (issue 18): its stages are runs of their own
        raise ConfigError(
            "this recipe has stages (an iteration recipe); run it with "
            "echoic.train.stages.run_stages(config) or echoic pretrain --config RECIPE."
        )
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    t = config.trainer
    if t.threads:
        torch.set_num_threads(t.threads)
    L.seed_everything(config.seed, workers=False, verbose=False)
    captions = None
    if config.data.captions:  # audio–text pairs (echoic.train.paired)
        clips, captions = list_paired_clips(config.data)
        digest = paired_hash(clips, captions)
    else:
        clips = list_clips(config.data.train, config.data.max_files)
        digest = data_hash(clips)
    module = PretrainModule(config, clips=clips, data_hash=digest, captions=captions)
    (out / "config.yaml").write_text(dump_config(resolved_config(config, module)))

    ckpt_dir = out / "checkpoints"
    clean_stale_tmp(ckpt_dir)
    ckpt_path = find_resume(out, resume)
    checkpointing = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="step={step:08d}",
        auto_insert_metric_name=False,
        every_n_train_steps=t.checkpoint_every_n_steps,
        save_top_k=t.keep_checkpoints,
        monitor="step",
        mode="max",
        save_last=True,
        save_on_train_epoch_end=False,
    )
    budget = [CpuBudget(t.max_cpu_minutes)] if t.max_cpu_minutes else []
    accelerator = resolve_accelerator(t)
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=strategy if strategy is not None else build_strategy(t),
        precision=resolve_precision(t.precision, accelerator),  # type: ignore[arg-type]
        max_steps=t.max_steps,
        max_epochs=-1,
        accumulate_grad_batches=t.accumulate_grad_batches,
        gradient_clip_val=t.gradient_clip_val,
        gradient_clip_algorithm="norm",
        log_every_n_steps=t.log_every_n_steps,
        callbacks=[checkpointing, CheckpointOnSigterm(ckpt_dir / LAST), *budget, *callbacks],
        logger=_logger(config),
        enable_progress_bar=t.progress_bar,
        enable_model_summary=False,
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        deterministic=t.deterministic,
        benchmark=False,
        default_root_dir=str(out),
        plugins=[AtomicCheckpointIO()],
    )
    with warnings.catch_warnings():
        # expected here: EMA teachers stay in eval mode; resumed runs reuse their folder
        warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")
        warnings.filterwarnings(
            "ignore", message=r".*Checkpoint directory .* exists and is not empty.*"
        )
        warnings.filterwarnings("ignore", message=r".*treespec, LeafSpec.*")
        try:
            trainer.fit(module, ckpt_path=ckpt_path, weights_only=True)
        except SIGTERMException as stop:  # Lightning stopped at a step boundary; last.ckpt saved
            if trainer.is_global_zero:
                print(
                    f"stopped by SIGTERM after step {trainer.global_step}; checkpoint: "
                    f"{ckpt_dir / LAST}; resume with the same command plus --resume auto",
                    flush=True,
                )
            raise SystemExit(128 + signal.SIGTERM) from stop
    last = ckpt_dir / LAST
    trainer.save_checkpoint(last, weights_only=False)
    export_dir = None
    if export and trainer.is_global_zero:
        export_dir = export_checkpoint(last, config.export_dir or out / "model")
    skipped = sorted(module.skipped_files)
    if skipped and trainer.is_global_zero:
        log.warning("skipped %d unreadable training files, e.g. %s", len(skipped), skipped[:3])
    return PretrainResult(module, trainer, last, export_dir, digest, skipped)
