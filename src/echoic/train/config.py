"""Pretraining run configuration: YAML recipes merged over dataclass defaults, dotted overrides.

``load_config("configs/pretrain/eat_base.yaml", ["--optim.lr", "1e-4", "--data.crop_s=5"])``
reads the YAML, applies the overrides (values are parsed as YAML: ``5`` is an int, ``[a, b]`` a
list, ``null`` None) and builds a :class:`PretrainConfig`; an unknown key anywhere raises
:class:`~echoic.errors.ConfigError` naming the nearest valid key. ``objective.config`` and
``model.*_config`` are checked later, by the objective / encoder / frontend that own them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from echoic.config import from_dict, to_dict
from echoic.errors import ConfigError

__all__ = [
    "DataConfig",
    "FSDPConfig",
    "MixConfig",
    "ModelSection",
    "ObjectiveSection",
    "OptimConfig",
    "PretrainConfig",
    "StageConfig",
    "TokenizerStageConfig",
    "TrainerConfig",
    "apply_overrides",
    "dump_config",
    "load_config",
    "parse_overrides",
    "read_yaml",
]


class _Loader(yaml.SafeLoader):
    """Safe YAML with YAML 1.2 floats: ``1e-4`` is a float (YAML 1.1 reads it as a string)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def read_yaml(text: str) -> Any:
    """Parse YAML safely, reading ``1e-4`` as a float."""
    return yaml.load(text, Loader=_Loader)


@dataclass
class ModelSection:
    """What to build: encoder size and frontend (the fields of :class:`echoic.checkpoint.ModelConfig`).

    init: an echoic model directory or registered name (``echoic-tiny``) whose encoder weights
        start the encoder instead of a random initialisation; its encoder must have this
        section's architecture and its frontend this section's frontend and settings
        (normalisation statistics included), else a :class:`~echoic.errors.ConfigError` names
        what differs. Empty: random initialisation.
    freeze_encoder: the encoder takes no gradients and stays in eval mode (its weights are
        exported unchanged): train only an objective's heads on a pretrained tower (with
        ``init``), e.g. an audio–text objective on a frozen audio encoder, as CoLLAP does.
    """

    encoder: str = "vit_base"
    encoder_config: dict[str, Any] = field(default_factory=dict)
    frontend: str = "kaldi_fbank"
    frontend_config: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    licence: str = ""
    embed: dict[str, Any] = field(default_factory=dict)  # recommended EmbedConfig of the export
    init: str = ""
    freeze_encoder: bool = False


@dataclass
class ObjectiveSection:
    """Which registered objective, and its config (checked by the objective's dataclass)."""

    name: str = "eat"
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class MixConfig:
    """On-the-fly mixing augmentation for a small corpus (:mod:`echoic.train.mix`); off by default.

    Each batch row (one crop), with ``probability``: a background is added at an SNR drawn
    uniformly from ``snr_db`` (foreground power over background power, over the crop's valid
    samples); the background is a crop of another clip of the batch, or, when ``backgrounds``
    lists files / folders / manifests (as ``data.train``), a random crop of a random one of them.
    Every row then gets a gain drawn from ``gain_db``; ``speed`` > 0 first resamples the row
    (soxr) by a factor drawn from ``[1 - speed, 1 + speed]``: pitch and tempo move together (speed
    perturbation, a cheap stand-in for separate pitch and time shifts) and the result is cropped
    (at random) or tiled back to the crop's length. Crops are random already (the data layer).
    The draws of a batch come from a generator seeded by ``(seed, first clip number of the
    batch)``: a batch stays a pure function of the step, so resuming stays exact.
    """

    enabled: bool = False
    probability: float = 0.5
    snr_db: tuple[float, float] = (0.0, 20.0)
    gain_db: tuple[float, float] = (-6.0, 6.0)
    speed: float = 0.0
    backgrounds: tuple[str, ...] = ()


@dataclass
class DataConfig:
    """Training audio and how it is cut.

    train: audio files, folders (walked recursively) and manifests (``.csv``/``.tsv`` with a
        ``file``/``path``/``audio_filepath`` column, ``.txt`` one path per line, ``.jsonl`` /
        ``.jsonl.gz`` with those keys or lhotse recording / cut manifests). Relative paths inside a
        manifest are relative to the manifest's folder; ``shared:NAME`` means the folder ``NAME``
        of the shared real-audio data (``$ECHOIC_DATA`` or ``../shared/data``).
    crop_s: seconds per crop. views: crops per clip per step (each is a batch item).
    batch_size: clips per device per micro-batch (items = ``batch_size * views``).
    pad: shorter clips are tiled (``"repeat"``) or zero-padded (``"zero"``: padded tokens are
        masked out of attention and losses).
    max_files: use only the first N files of the sorted list (quick runs).
    captions: pair every clip with its captions, one drawn per step (seeded), for audio–text
        objectives (``clap``, ``slap``): ``train`` lists corpus folders whose ``captions.csv``
        (``echoic corpus build``) captions their ``manifest.csv`` clips, or, with
        ``caption_template``, manifests whose columns fill the template (``"{category} in
        {lang}"``: one generated caption per row). :mod:`echoic.train.paired`.
    caption_langs: keep captions in these languages (``en`` also keeps ``en-GB``); empty: all.
    caption_kinds: keep captions of these kinds (``human``, ``template``, ``generated``).
    mix: mixing / gain / speed augmentation (:class:`MixConfig`), off unless ``mix.enabled``.
    """

    train: tuple[str, ...] = ()
    crop_s: float = 10.0
    views: int = 1
    batch_size: int = 12
    num_workers: int = 4
    pad: str = "repeat"
    max_files: int | None = None
    shuffle: bool = True
    max_consecutive_failures: int = 100
    captions: bool = False
    caption_template: str | None = None
    caption_langs: tuple[str, ...] = ()
    caption_kinds: tuple[str, ...] = ()
    mix: MixConfig = field(default_factory=MixConfig)


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then cosine decay to ``min_lr_ratio * lr`` at ``max_steps``.

    Weight decay skips biases, norms and single-vector parameters (CLS / mask tokens).
    """

    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.05
    warmup_steps: int = 1000
    min_lr_ratio: float = 0.0


@dataclass
class FSDPConfig:
    """``trainer.strategy: fsdp`` settings (:mod:`echoic.train.strategy`; docs/scaling.md).

    wrap: ``"block"`` makes every transformer block and every encoder (student and EMA teacher
        alike, so an EMA update pairs equal shards) an FSDP unit; ``"encoder"``: encoders only.
    sharding: ``FULL_SHARD`` (parameters, gradients and optimiser state), ``SHARD_GRAD_OP``
        (keeps the gathered parameters between forward and backward), ``HYBRID_SHARD`` (shards
        within a node, replicates across nodes) or ``NO_SHARD`` (DDP-like).
    activation_checkpointing: recompute each block's activations in the backward pass.
    cpu_offload: keep the parameter shards on the CPU between uses.
    """

    wrap: str = "block"
    sharding: str = "FULL_SHARD"
    activation_checkpointing: bool = False
    cpu_offload: bool = False


@dataclass
class TrainerConfig:
    """Lightning trainer settings.

    strategy: any Lightning strategy name (``ddp``, ...); ``fsdp`` builds a per-block FSDP
        strategy from ``fsdp`` (:class:`FSDPConfig`, :func:`echoic.train.strategy.build_strategy`).
    precision: ``"auto"`` = fp32 on CPU, ``bf16-mixed`` on a GPU that supports bf16, else fp32;
        any Lightning precision string is passed through.
    checkpoint_every_n_steps: full training checkpoints (model, optimiser, RNG) every N optimiser
        steps, written atomically to ``output_dir/checkpoints``; ``keep_checkpoints`` most recent
        are kept (-1: all) plus ``last.ckpt``.
    threads: torch intra-op threads (None: torch's default).
    max_cpu_minutes: stop after this much CPU time of the training process and its workers
        (counted across resumes), e.g. for equal-cost pilots on a shared machine; None: no limit.
    """

    max_steps: int = 400_000
    accelerator: str = "auto"
    devices: Any = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    fsdp: FSDPConfig = field(default_factory=FSDPConfig)
    precision: str = "auto"
    accumulate_grad_batches: int = 1
    gradient_clip_val: float | None = None
    log_every_n_steps: int = 50
    checkpoint_every_n_steps: int = 10_000
    keep_checkpoints: int = 2
    progress_bar: bool = True
    threads: int | None = None
    deterministic: bool = False
    tensorboard: bool = True
    max_cpu_minutes: float | None = None


# --- iteration recipes (echoic.train.stages; docs/pretraining.md, "Iteration recipes") ----------
@dataclass
class TokenizerStageConfig:
    """A ``tokenizer`` stage: fit tokenizer ``name`` on frames of ``model`` over the training audio.

    model: a model directory, ``stage:NAME`` (that stage's export) or ``""`` (the recipe's own,
        untrained model: enough for ``input: mfcc`` / ``patches``, which do not read weights).
    input: the frames the objective will feed it (``target_frames``: patches / mfcc / layer),
        ``layer`` for ``input: layer``; ``target_layer``: the layer that tokenizers trained by
        distillation (``beats_acoustic``) learn to predict.
    max_frames / max_files / crop_s: at most this many frames, files, and seconds per file
        (``crop_s`` None: ``data.crop_s``), files in a seeded random order.
    """

    name: str = "kmeans"
    config: dict[str, Any] = field(default_factory=dict)
    model: str = ""
    input: str = "patches"
    layer: int = -1
    target_layer: int = -1
    max_frames: int = 20000
    max_files: int | None = None
    crop_s: float | None = None


@dataclass
class StageConfig:
    """One stage of an iteration recipe: ``pretrain`` (overrides of the recipe, nested like it)
    or ``tokenizer``; values ``stage:NAME`` name an earlier stage's product."""

    name: str = ""
    pretrain: dict[str, Any] | None = None
    tokenizer: TokenizerStageConfig | None = None


@dataclass
class PretrainConfig:
    """A whole pretraining run. ``export_dir`` defaults to ``output_dir/model``. ``stages``: an
    iteration recipe's stages, run by :func:`echoic.train.stages.run_stages` (empty: one run)."""

    seed: int = 0
    output_dir: str = "runs/pretrain"
    export_dir: str | None = None
    model: ModelSection = field(default_factory=ModelSection)
    objective: ObjectiveSection = field(default_factory=ObjectiveSection)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    stages: list[StageConfig] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stages = [
            from_dict(StageConfig, s, where=f"stages[{i}]") if isinstance(s, dict) else s
            for i, s in enumerate(self.stages)
        ]
        if self.data.views < 1 or self.data.batch_size < 1:
            raise ConfigError(
                f"data.views and data.batch_size must be >= 1; found {self.data.views}, "
                f"{self.data.batch_size}."
            )
        if self.data.crop_s <= 0:
            raise ConfigError(f"data.crop_s must be > 0 seconds; found {self.data.crop_s}.")
        if self.data.pad not in ("repeat", "zero"):
            raise ConfigError(f"data.pad must be 'repeat' or 'zero'; found {self.data.pad!r}.")
        if self.data.caption_template and not self.data.captions:
            raise ConfigError(
                "data.caption_template is set but data.captions is false; set data.captions: "
                "true to pair clips with captions, or drop the template."
            )
        if self.trainer.max_steps < 1:
            raise ConfigError(f"trainer.max_steps must be >= 1; found {self.trainer.max_steps}.")


def parse_overrides(tokens: list[str]) -> dict[str, Any]:
    """``["--a.b", "1", "--c=x"]`` → ``{"a.b": 1, "c": "x"}`` (values parsed as YAML)."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--") or len(token) < 3:
            raise ConfigError(
                f"expected an override like --optim.lr 1e-4 or --optim.lr=1e-4; found {token!r}."
            )
        key = token[2:]
        if "=" in key:
            key, raw = key.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(tokens):
                raise ConfigError(f"override --{key} has no value; write --{key} VALUE.")
            raw = tokens[i + 1]
            i += 2
        out[key.replace("-", "_")] = read_yaml(raw) if raw != "" else ""
    return out


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Set dotted keys in a nested dict (creating sub-dicts); returns ``data``."""
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(
                    f"override {dotted!r}: {part!r} holds {child!r}, not a section; "
                    f"set {'.'.join(parts[: parts.index(part) + 1])} itself instead."
                )
            node = child
        node[parts[-1]] = value
    return data


def load_config(
    path: str | os.PathLike[str] | None = None, overrides: list[str] | dict[str, Any] | None = None
) -> PretrainConfig:
    """Read a YAML recipe (or start from defaults), apply overrides, build the config."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(
                f"config file {p} not found; expected a YAML recipe such as "
                "configs/pretrain/eat_base.yaml."
            )
        loaded = read_yaml(p.read_text())
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(
                f"{p}: expected a YAML mapping at the top; found {type(loaded).__name__}."
            )
        data = loaded or {}
    if overrides:
        parsed = parse_overrides(overrides) if isinstance(overrides, list) else overrides
        apply_overrides(data, parsed)
    return from_dict(PretrainConfig, data, where=str(path) if path else "config")


def dump_config(config: PretrainConfig) -> str:
    """The config as YAML (the resolved recipe saved beside every run)."""
    return yaml.safe_dump(to_dict(config), sort_keys=False)
