"""Iteration recipes: a recipe's ``stages`` run in order as one command, each in its own folder.

BEATs and HuBERT train in iterations — pretrain with some targets, fit a tokenizer on what the
model learnt, pretrain again with its ids. A recipe with ``stages:`` says so
(``configs/pretrain/beats_iter.yaml``, ``hubert_iter.yaml``)::

    stages:
      - {name: iter0, pretrain: {}}                         # the recipe as it is
      - name: tokenizer1                                    # fit a tokenizer on iter0's model
        tokenizer: {name: beats_acoustic, model: "stage:iter0", input: patches, target_layer: -1}
      - name: iter1                                         # the recipe with these overrides
        pretrain: {objective: {config: {tokenizer: "stage:tokenizer1"}}}

* a ``pretrain`` stage is the recipe (without ``stages``) deep-merged with the stage's
  overrides, trained by :func:`echoic.train.run.pretrain` into ``output_dir/NAME`` (export in
  ``output_dir/NAME/model``);
* a ``tokenizer`` stage (:class:`~echoic.train.config.TokenizerStageConfig`) reads the training
  audio through a model, takes the frames the objective will feed the tokenizer
  (:func:`echoic.objectives.discrete.token_frames`) and fits it into ``output_dir/NAME``;
* ``"stage:NAME"`` anywhere in a stage's settings is the path of stage NAME's product (a
  pretrain stage's model directory, a tokenizer stage's tokenizer directory).

Running the recipe again goes on where it stopped: a finished stage (``stage.json`` says so) is
skipped, a stopped pretrain stage resumes from its newest checkpoint (exactly, as ``--resume
auto``), an unfinished tokenizer stage is fitted again from the start (fits are seeded). A
finished stage whose settings have since changed is an error (delete its folder to redo it).
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback

from echoic.checkpoint import EchoicModel, load_dir
from echoic.config import from_dict, to_dict
from echoic.data.audio import load_audio
from echoic.errors import ConfigError
from echoic.objectives.discrete import FRAME_KINDS, token_frames
from echoic.tokenizers import TOKENIZERS, build_tokenizer
from echoic.train.budget import CpuBudget
from echoic.train.config import PretrainConfig, StageConfig, TokenizerStageConfig
from echoic.train.data import Clip, list_clips
from echoic.train.module import build_model_config
from echoic.train.run import PretrainResult, pretrain
from echoic.types import AudioBatch

__all__ = [
    "StagesResult",
    "fit_tokenizer_stage",
    "run_stages",
    "stage_configs",
    "stage_pretrain_config",
]

log = logging.getLogger(__name__)
RECORD = "stage.json"
REFERENCE = "stage:"


@dataclass
class StagesResult:
    """What an iteration recipe left: every stage's folder, and the last pretrain run of this
    call (None when every stage had finished before)."""

    stage_dirs: dict[str, Path] = field(default_factory=dict)
    finished: bool = True
    last: PretrainResult | None = None
    model_dir: Path | None = None


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _resolve(value: Any, products: dict[str, Path], stage: str) -> Any:
    if isinstance(value, dict):
        return {k: _resolve(v, products, stage) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, products, stage) for v in value]
    if isinstance(value, str) and value.startswith(REFERENCE):
        name = value[len(REFERENCE) :]
        if name not in products:
            raise ConfigError(
                f"stage {stage!r} refers to {value!r}, but no earlier stage is named {name!r}; "
                f"earlier stages: {sorted(products)}."
            )
        return str(products[name])
    return value


def _check_stages(stages: Sequence[StageConfig]) -> None:
    names = [s.name for s in stages]
    for s in stages:
        if not s.name or "/" in s.name or s.name.startswith("."):
            raise ConfigError(f"every stage needs a plain folder name; found {s.name!r}.")
        if (s.pretrain is None) == (s.tokenizer is None):
            raise ConfigError(
                f"stage {s.name!r} must have exactly one of 'pretrain' (overrides, {{}} for the "
                "recipe as it is) or 'tokenizer'."
            )
    if len(set(names)) != len(names):
        raise ConfigError(f"stage names must be unique; found {names}.")


def _base(config: PretrainConfig) -> dict[str, Any]:
    data = to_dict(config)
    data.pop("stages")
    return data


def stage_pretrain_config(
    config: PretrainConfig, stage: StageConfig, products: dict[str, Path]
) -> PretrainConfig:
    """The run of pretrain ``stage``: the recipe merged with its overrides, in its folder."""
    data = _resolve(_merge(_base(config), stage.pretrain or {}), products, stage.name)
    out = Path(config.output_dir) / stage.name
    data["output_dir"], data["export_dir"] = str(out), str(out / "model")
    return from_dict(PretrainConfig, data, where=f"stage {stage.name!r}")


def _products(config: PretrainConfig) -> dict[str, Path]:
    root = Path(config.output_dir)
    return {
        s.name: root / s.name / "model" if s.pretrain is not None else root / s.name
        for s in config.stages
    }


def stage_configs(config: PretrainConfig) -> dict[str, PretrainConfig | TokenizerStageConfig]:
    """Every stage's resolved settings (``stage:NAME`` → that stage's folder), checked, without
    running anything: a pretrain stage's :class:`PretrainConfig`, a tokenizer stage's
    :class:`TokenizerStageConfig`."""
    _check_stages(config.stages)
    products = _products(config)
    out: dict[str, PretrainConfig | TokenizerStageConfig] = {}
    for stage in config.stages:
        if stage.tokenizer is not None:
            resolved = _resolve(to_dict(stage.tokenizer), products, stage.name)
            out[stage.name] = from_dict(
                TokenizerStageConfig, resolved, where=f"stage {stage.name!r}"
            )
        else:
            out[stage.name] = stage_pretrain_config(config, stage, products)
        # a reference is only valid to an earlier stage
        products_so_far = list(products)[: list(products).index(stage.name)]
        _resolve(to_dict(stage), {k: products[k] for k in products_so_far}, stage.name)
    return out


def _stage_model(spec: TokenizerStageConfig, config: PretrainConfig) -> EchoicModel:
    if spec.model:
        return load_dir(spec.model)
    if spec.input == "layer":
        raise ConfigError(
            "a tokenizer stage with input: layer reads a trained model's layer; set model to a "
            "model directory or stage:NAME."
        )
    return EchoicModel(build_model_config(config)).eval()


@torch.no_grad()
def gather_stage_frames(
    spec: TokenizerStageConfig, model: EchoicModel, clips: Sequence[Clip], crop_s: float, seed: int
) -> tuple[list[torch.Tensor], list[torch.Tensor] | None, int]:
    """Frames (and teacher frames for tokenizers that predict them) of up to
    ``spec.max_frames`` valid tokens, one tensor per clip, clips in a seeded random order.
    Returns ``(inputs, targets, files_skipped)``."""
    uses_targets = TOKENIZERS.get(spec.name).uses_targets
    order = torch.randperm(len(clips), generator=torch.Generator().manual_seed(seed)).tolist()
    if spec.max_files is not None:
        order = order[: spec.max_files]
    inputs: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    n_frames = skipped = 0
    rate = model.sample_rate
    for index in order:
        clip = clips[index]
        duration = min(crop_s, clip.duration_s) if clip.duration_s else crop_s
        try:
            samples, _ = load_audio(clip.path, rate, offset_s=clip.start_s, duration_s=duration)
        except Exception as err:  # unreadable files never stop a stage (as in training)
            log.warning("tokenizer stage: skipped %s (%s)", clip.path, err)
            skipped += 1
            continue
        if samples.shape[-1] < model.frontend.min_samples:
            skipped += 1
            continue
        wave = torch.from_numpy(samples)[None]
        features = model.frontend(AudioBatch(wave, torch.tensor([wave.shape[-1]]), rate))
        valid = ~model.encoder.token_padding(features)[0]
        inputs.append(token_frames(spec.input, features, model.encoder, spec.layer)[0][valid])
        if uses_targets:
            layer = token_frames("layer", features, model.encoder, spec.target_layer)
            targets.append(layer[0][valid])
        n_frames += int(valid.sum())
        if n_frames >= spec.max_frames:
            break
    if not inputs:
        raise ConfigError(
            f"tokenizer stage {spec.name!r}: no readable audio among {len(order)} clip(s)."
        )
    return inputs, (targets if uses_targets else None), skipped


def fit_tokenizer_stage(
    config: PretrainConfig, spec: TokenizerStageConfig, out: Path
) -> dict[str, float]:
    """Fit and save the tokenizer of a tokenizer stage into ``out``; returns its statistics."""
    if spec.input not in FRAME_KINDS:
        raise ConfigError(
            f"tokenizer stage input must be one of {FRAME_KINDS}; found {spec.input!r}."
        )
    model = _stage_model(spec, config)
    clips = list_clips(config.data.train, config.data.max_files)
    crop_s = spec.crop_s or config.data.crop_s
    inputs, targets, skipped = gather_stage_frames(spec, model, clips, crop_s, config.seed)
    settings = {"seed": config.seed, **spec.config}
    target_dim = int(targets[0].shape[1]) if targets else None
    tokenizer = build_tokenizer(spec.name, int(inputs[0].shape[1]), settings, target_dim)
    stats = tokenizer.fit(inputs, targets)
    tokenizer.source = {
        "target_frames": spec.input,
        "layer": spec.layer if spec.input == "layer" else None,
        "target_layer": spec.target_layer if targets else None,
        "model": spec.model or f"untrained {model.config.encoder}",
        "fit_files": len(inputs),
        "skipped_files": skipped,
    }
    tokenizer.frame_hop_ms = 1000.0 * model.geometry.hop_s
    tokenizer.save(out)
    return stats


RUN_ONLY = {
    "trainer": (
        "accelerator", "devices", "num_nodes", "strategy", "progress_bar", "threads",
        "tensorboard", "log_every_n_steps", "checkpoint_every_n_steps", "keep_checkpoints",
    ),
    "data": ("num_workers",),
}  # fmt: skip
"""Settings that change how a stage runs, not what it computes (ignored when comparing)."""


def _settings(config: PretrainConfig, stage: StageConfig) -> dict[str, Any]:
    """What a stage computes from: the recipe (without stages, folders and run-only settings),
    its own and every earlier stage's settings, ``stage:NAME`` references unresolved (folders
    may move)."""
    base = _base(config)
    base.pop("output_dir")
    base.pop("export_dir")
    for section, keys in RUN_ONLY.items():
        for key in keys:
            base[section].pop(key, None)
    upto = [s for s in config.stages[: config.stages.index(stage) + 1]]
    return {"recipe": base, "stages": [to_dict(s) for s in upto]}


def _record(folder: Path) -> dict[str, Any] | None:
    path = folder / RECORD
    return json.loads(path.read_text()) if path.is_file() else None


def _write_record(folder: Path, settings: dict[str, Any], extra: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{RECORD}.tmp"
    tmp.write_text(json.dumps({"finished": True, "settings": settings, **extra}, indent=2) + "\n")
    tmp.replace(folder / RECORD)


def _finished(folder: Path, settings: dict[str, Any], name: str) -> bool:
    record = _record(folder)
    if record is None or not record.get("finished"):
        return False
    if record.get("settings") != settings:
        raise ConfigError(
            f"stage {name!r} finished earlier in {folder} with other settings than the recipe's "
            "now; delete that folder to redo the stage (and the ones after it), or use another "
            "output_dir."
        )
    return True


def _budget_spent(outcome: PretrainResult) -> bool:
    """Whether the run stopped because ``trainer.max_cpu_minutes`` ran out (a finished stage)."""
    return any(
        isinstance(cb, CpuBudget) and cb.used_s >= cb.limit_s
        for cb in getattr(outcome.trainer, "callbacks", [])
    )


def run_stages(
    config: PretrainConfig, callbacks: Sequence[Callback] = (), resume: str | None = None
) -> StagesResult:
    """Run (or go on with) the stages of an iteration recipe; see the module docstring.

    A pretrain stage stopped before ``trainer.max_steps`` (a callback, SIGTERM) ends the call
    with ``finished=False`` (one stopped by ``trainer.max_cpu_minutes`` is finished); running it again resumes that stage. ``resume`` is accepted for
    symmetry with :func:`~echoic.train.run.pretrain`: stages always go on where they stopped.
    """
    if not config.stages:
        raise ConfigError("run_stages needs a recipe with stages; use pretrain() for one run.")
    resolved = stage_configs(config)
    root = Path(config.output_dir)
    products = _products(config)
    result = StagesResult()
    for stage in config.stages:
        folder = root / stage.name
        result.stage_dirs[stage.name] = folder
        spec = resolved[stage.name]
        if isinstance(spec, TokenizerStageConfig):
            settings = _settings(config, stage)
            if _finished(folder, settings, stage.name):
                log.info("stage %s: finished earlier, skipped", stage.name)
                continue
            print(f"stage {stage.name}: fitting tokenizer {spec.name}", flush=True)
            stats = fit_tokenizer_stage(config, spec, folder)
            _write_record(folder, settings, {"kind": "tokenizer", "fit_stats": stats})
            continue
        run = spec
        settings = _settings(config, stage)
        if _finished(folder, settings, stage.name):
            log.info("stage %s: finished earlier, skipped", stage.name)
            result.model_dir = products[stage.name]
            continue
        print(f"stage {stage.name}: pretraining {run.objective.name}", flush=True)
        outcome = pretrain(run, resume="auto", callbacks=callbacks)
        result.last = outcome
        result.model_dir = outcome.export_dir
        if outcome.trainer.global_step < run.trainer.max_steps and not _budget_spent(outcome):
            result.finished = False
            print(
                f"stage {stage.name} stopped at step {outcome.trainer.global_step} of "
                f"{run.trainer.max_steps}; run the recipe again to go on from there",
                flush=True,
            )
            return result
        _write_record(folder, settings, {"kind": "pretrain", "steps": run.trainer.max_steps})
    if config.export_dir and result.model_dir is not None:
        shutil.copytree(result.model_dir, config.export_dir, dirs_exist_ok=True)
        result.model_dir = Path(config.export_dir)
    return result
