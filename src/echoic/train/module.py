"""One LightningModule for every objective: audio → frontend → registered ``Objective`` → loss.

The module never branches on the method: it builds the frontend and encoder from the model
section, hands the encoder to the objective, optimises every ``requires_grad`` parameter with
AdamW, and calls ``objective.after_optimizer_step()`` after each optimiser step (EMA teachers).

Checkpoints carry, besides Lightning's model / optimiser / scheduler / loop state, an ``"echoic"``
entry: the resolved config, model config, data hash, the number of micro-batches consumed (the
data stream resumes from it), the skipped files, and the RNG states of every rank (Python, NumPy,
torch CPU/CUDA and the masking generator), restored right before the first batch after resuming.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig

from echoic.cards import load
from echoic.checkpoint import EchoicModel, ModelConfig
from echoic.config import to_dict
from echoic.errors import ConfigError
from echoic.objectives import OBJECTIVES, build_objective
from echoic.text.base import TokenBatch
from echoic.train.config import PretrainConfig
from echoic.train.data import Clip, CropDataset, build_dataloader, collate_crops, list_clips
from echoic.train.mix import MixCollate
from echoic.train.paired import PairCollate, PairedCropDataset
from echoic.train.rng import capture_rng, restore_rng
from echoic.types import AudioBatch, TrainBatch

__all__ = [
    "PretrainModule",
    "build_model_config",
    "cosine_with_warmup",
    "init_encoder",
    "parameter_groups",
    "single_vector_names",
    "trim_step_log",
]

log = logging.getLogger(__name__)
STEP_LOG = "train_log.jsonl"


def build_model_config(config: PretrainConfig) -> ModelConfig:
    """The exported model's config; its ``embed`` is the objective's recommended embedding
    recipe (``Objective.embed_defaults``) updated by the recipe's ``model.embed``."""
    m = config.model
    embed = {**OBJECTIVES.get(config.objective.name).embed_defaults, **m.embed}
    return ModelConfig(
        encoder=m.encoder,
        encoder_config=dict(m.encoder_config),
        frontend=m.frontend,
        frontend_config=dict(m.frontend_config),
        name=m.name or f"{config.objective.name}-{m.encoder}",
        licence=m.licence,
        objective=config.objective.name,
        embed=embed,
    )


def init_encoder(model: EchoicModel, name_or_dir: str) -> None:
    """Load the encoder weights of model ``name_or_dir`` (a directory or registered name) into
    ``model``'s encoder (``model.init``); the two must share the encoder architecture and the
    frontend with its settings."""
    given = load(name_or_dir)
    where = f"model.init {name_or_dir!r}"
    if not isinstance(given, EchoicModel):
        raise ConfigError(
            f"{where} is a {type(given).__name__}, not an echoic model; use an echoic model "
            "directory or a registered echoic name."
        )
    ours, theirs = model.config, given.config
    if (ours.frontend, ours.frontend_config) != (theirs.frontend, theirs.frontend_config):
        differ = sorted(
            k
            for k in set(ours.frontend_config) | set(theirs.frontend_config)
            if ours.frontend_config.get(k) != theirs.frontend_config.get(k)
        )
        raise ConfigError(
            f"{where} reads other features than this recipe: frontend {theirs.frontend!r} vs "
            f"{ours.frontend!r}, settings that differ: {differ}. Copy its model section "
            f"(frontend, frontend_config) into the recipe."
        )
    mine, state = model.encoder.state_dict(), given.encoder.state_dict()
    if mine.keys() != state.keys() or any(mine[k].shape != state[k].shape for k in mine):
        raise ConfigError(
            f"{where} has another encoder than this recipe's ({theirs.encoder} "
            f"{theirs.encoder_config} vs {ours.encoder} {ours.encoder_config}); copy its model "
            "section (encoder, encoder_config) into the recipe."
        )
    model.encoder.load_state_dict(state)


def cosine_with_warmup(warmup: int, total: int, min_ratio: float) -> Callable[[int], float]:
    """LR multiplier at optimiser step ``s`` (0-based): ``(s + 1) / warmup`` during warm-up, then
    cosine from 1 to ``min_ratio`` at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


_WRAPPERS = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.")


def _plain_name(name: str) -> str:
    """A parameter's name without the segments FSDP / activation checkpointing insert."""
    for wrapper in _WRAPPERS:
        name = name.replace(wrapper, "")
    return name


def single_vector_names(module: torch.nn.Module) -> set[str]:
    """Names of biases, norms and single vectors such as CLS / mask tokens of shape ``(1, 1, D)``
    (never weight-decayed). Taken before FSDP wraps the module: its shards are all 1-D."""
    return {
        _plain_name(name)
        for name, p in module.named_parameters()
        if p.ndim <= 1 or all(s == 1 for s in p.shape[:-1])
    }


def parameter_groups(
    module: torch.nn.Module, weight_decay: float, no_decay: set[str] | None = None
) -> list[dict[str, Any]]:
    """Trainable parameters split into decayed (matrices) and not decayed (``no_decay``: by
    default :func:`single_vector_names` of ``module`` as it is now)."""
    if no_decay is None:
        no_decay = single_vector_names(module)
    decay: list[torch.nn.Parameter] = []
    plain: list[torch.nn.Parameter] = []
    for name, p in module.named_parameters():
        if p.requires_grad:
            (plain if _plain_name(name) in no_decay else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]


def trim_step_log(path: Path, step: int) -> None:
    """Keep the rows of ``train_log.jsonl`` up to optimiser step ``step`` (a resumed run redoes
    the steps after its checkpoint; a fresh run, ``step`` 0, starts an empty log), dropping a line
    cut short by a kill; rewritten atomically."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and int(row.get("step", step + 1)) <= step:
            kept.append(line + "\n")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(kept), encoding="utf-8")
    os.replace(tmp, path)


def _seed_for(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1, dtype=np.uint64)[0] >> 1)


class PretrainModule(L.LightningModule):
    """Generic SSL pretraining module over any registered objective."""

    def __init__(
        self,
        config: PretrainConfig,
        clips: list[Clip] | None = None,
        data_hash: str | None = None,
        captions: Sequence[tuple[str, ...]] | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        model = EchoicModel(build_model_config(config))
        if config.model.init:  # before the objective copies the encoder (EMA teachers)
            init_encoder(model, config.model.init)
        self.model_config: ModelConfig = model.config
        self.frontend = model.frontend
        self.objective = build_objective(
            config.objective.name, model.encoder, config.objective.config
        )
        if config.model.freeze_encoder:
            self.objective.encoder.requires_grad_(False)
            self.objective.encoder.eval()
        if config.data.views < self.objective.min_views:
            raise ConfigError(
                f"objective {config.objective.name!r} needs at least {self.objective.min_views} "
                f"views per clip; found data.views={config.data.views}. Set data.views: "
                f"{self.objective.min_views} in the recipe."
            )
        wants_text = self.objective.needs_text
        if clips is not None and wants_text != (captions is not None):
            raise ConfigError(
                f"objective {config.objective.name!r} trains on audio–caption pairs: set "
                "data.captions: true with data.train listing corpus folders that have "
                "captions.csv (or data.caption_template over a manifest)."
                if wants_text
                else f"data.captions is set but objective {config.objective.name!r} reads no "
                "captions; drop data.captions or train an audio–text objective (clap, slap)."
            )
        self.no_decay = single_vector_names(self.objective)  # before any FSDP wrapping
        self.clips = clips
        self.captions = captions
        self.data_hash = data_hash
        self.mask_generator = torch.Generator()
        self.mask_generator.manual_seed(_seed_for(config.seed, 0, 2))
        self.batches_seen = 0
        self.skipped_files: set[str] = set()
        self._rng_to_restore: dict[str, Any] | None = None
        self._window: list[float] = []
        self._started = time.perf_counter()

    def train(self, mode: bool = True) -> PretrainModule:
        super().train(mode)
        if self.config.model.freeze_encoder:
            self.objective.encoder.eval()  # a frozen encoder never uses dropout / drop-path
        return self

    # ----------------------------------------------------------------- set-up
    def setup(self, stage: str) -> None:
        # every rank draws different masks; a restored checkpoint overrides this state
        self.mask_generator.manual_seed(_seed_for(self.config.seed, self.global_rank, 2))

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        if self.clips is None:
            raise RuntimeError("PretrainModule needs clips to build its dataloader.")
        d = self.config.data
        settings: dict[str, Any] = {
            "sample_rate": self.frontend.sample_rate,
            "crop_s": d.crop_s,
            "views": d.views,
            "pad": d.pad,
            "seed": self.config.seed,
            "shuffle": d.shuffle,
            "min_samples": self.frontend.min_samples,
            "max_consecutive_failures": d.max_consecutive_failures,
            "channels": self.frontend.channels,
        }
        dataset: CropDataset
        if self.captions is not None:  # audio–text pairs, tokenized in the workers
            dataset = PairedCropDataset(self.clips, self.captions, **settings)
            collate: Any = PairCollate(self.objective.caption_tokenizer())
        else:
            dataset, collate = CropDataset(self.clips, **settings), collate_crops
        if d.mix.enabled:  # sound over background, gain, speed (echoic.train.mix)
            if self.captions is not None:
                raise ConfigError(
                    "data.mix mixes two clips, so a caption would describe half of the audio; "
                    "turn data.mix.enabled off for audio–text objectives."
                )
            backgrounds = list_clips(d.mix.backgrounds) if d.mix.backgrounds else []
            collate = MixCollate(
                d.mix, self.config.seed, self.frontend.sample_rate, backgrounds, collate
            )
        world = self.trainer.world_size if self._trainer is not None else 1
        return build_dataloader(
            dataset,
            batch_size=d.batch_size,
            start=lambda: self.batches_seen * d.batch_size,
            rank=self.global_rank,
            world_size=world,
            num_workers=d.num_workers,
            pin_memory=torch.cuda.is_available(),
            collate_fn=collate,
        )

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        o = self.config.optim
        optimizer = torch.optim.AdamW(
            parameter_groups(self.objective, o.weight_decay, self.no_decay),
            lr=o.lr,
            betas=tuple(o.betas),  # type: ignore[arg-type]
            eps=o.eps,
        )
        factor = cosine_with_warmup(o.warmup_steps, self.config.trainer.max_steps, o.min_lr_ratio)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def on_train_start(self) -> None:
        if self.trainer.is_global_zero:
            trim_step_log(Path(self.config.output_dir) / STEP_LOG, self.trainer.global_step)

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        # FSDP shards the gradients: only its own clip_grad_norm_ computes the global norm
        # (Lightning refuses norm clipping under FSDP)
        from torch.distributed.fsdp import FullyShardedDataParallel

        model = self.trainer.model
        if gradient_clip_val and isinstance(model, FullyShardedDataParallel):
            model.clip_grad_norm_(gradient_clip_val)
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    # ----------------------------------------------------------------- steps
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self._rng_to_restore is not None:
            restore_rng(self._rng_to_restore, self.mask_generator)
            self._rng_to_restore = None

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        audio = AudioBatch(batch["waveform"], batch["lengths"], self.frontend.sample_rate)
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
            features = self.frontend(audio)
        wants_audio = self.objective.needs_waveform
        text = TokenBatch(batch["text_ids"], batch["text_padding"]) if "text_ids" in batch else None
        train_batch = TrainBatch(
            features,
            batch["clip_index"],
            batch["view_index"],
            audio if wants_audio else None,
            text,
            groups=batch.get("groups"),
        )
        out = self.objective(train_batch, self.mask_generator)
        self.batches_seen += 1
        self.skipped_files.update(batch["failed"])
        items = int(audio.batch_size)
        loss = out.loss.detach()
        self.log("loss", loss, prog_bar=True, batch_size=items)
        self.log_dict({f"train/{k}": float(v) for k, v in out.logs.items()}, batch_size=items)
        self.log("data/skipped_files", float(len(self.skipped_files)), batch_size=items)
        self._window.append(float(loss))
        return out.loss

    def optimizer_step(
        self,
        epoch: int,
        batch_idx: int,
        optimizer: Any,
        optimizer_closure: Callable[[], Any] | None = None,
    ) -> None:
        lr = float(optimizer.param_groups[0]["lr"])
        optimizer.step(closure=optimizer_closure)
        hook_logs = self.objective.after_optimizer_step()
        self.log("train/lr", lr)
        for key, value in hook_logs.items():
            self.log(f"train/{key}", float(value))
        step = self.trainer.global_step + 1  # the counter is advanced after this hook
        if self._window and self.trainer.is_global_zero:
            row = {
                "step": step,
                "loss": sum(self._window) / len(self._window),
                "lr": lr,
                "skipped_files": len(self.skipped_files),
                "elapsed_s": round(time.perf_counter() - self._started, 3),
                **{k: float(v) for k, v in hook_logs.items()},
            }
            path = Path(self.config.output_dir) / STEP_LOG
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
        self._window = []

    # ----------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        mine = (capture_rng(self.mask_generator), sorted(self.skipped_files))
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, mine)  # every rank saves; rank 0 writes
        else:
            gathered = [mine]
        rng_states = [rank_state[0] for rank_state in gathered]
        for _, skipped in gathered:
            self.skipped_files.update(skipped)
        checkpoint["echoic"] = {
            "config": to_dict(self.config),
            "model_config": to_dict(self.model_config),
            "data_hash": self.data_hash,
            "batches_seen": self.batches_seen,
            "clips_per_batch": self.config.data.batch_size,
            "world_size": len(rng_states),
            "skipped_files": sorted(self.skipped_files),
            "rng": rng_states,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("echoic")
        if state is None:
            log.warning(
                "checkpoint has no echoic state; the data stream restarts from the beginning"
            )
            return
        world = self.trainer.world_size if self._trainer is not None else 1
        batch = self.config.data.batch_size
        clips_done = state["batches_seen"] * state["clips_per_batch"] * state["world_size"]
        self.batches_seen = clips_done // (batch * world)
        self.skipped_files = set(state.get("skipped_files", []))
        if self.data_hash and state.get("data_hash") and state["data_hash"] != self.data_hash:
            log.warning(
                "resuming on different data: checkpoint data hash %s, now %s",
                state["data_hash"],
                self.data_hash,
            )
        rngs = state.get("rng", [])
        if len(rngs) == world and state["clips_per_batch"] == batch:
            self._rng_to_restore = rngs[self.global_rank]
        else:
            log.warning(
                "resuming with %d ranks x %d clips instead of %d x %d: training continues but "
                "is not bit-identical to an uninterrupted run",
                world,
                batch,
                state["world_size"],
                state["clips_per_batch"],
            )
