"""Model directories: ``model.safetensors`` + ``config.json``, and the named-model registry.

A model directory is self-describing: ``config.json`` holds the format version, the echoic version,
the encoder name + full config, the frontend name + full config (normalisation stats included), the
objective, step and data hash of training, and provenance / licence. ``load`` accepts a directory or
a registered name (``list_models()``); weights are read with safetensors only (no pickle).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from echoic.config import from_dict, to_dict
from echoic.encoders.vit import build_encoder
from echoic.errors import CheckpointError
from echoic.features.base import build_frontend
from echoic.registry import Registry, unknown_name_message
from echoic.types import AudioBatch, EncoderOutput

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
DEFAULT_MODEL = "echoic-default"
BUNDLED_DEFAULT = "echoic-tiny"  # what echoic-default loads when it is bundled
BUNDLED_DIR = Path(__file__).resolve().parent / "models"


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model (weights aside)."""

    encoder: str = "vit_tiny"
    encoder_config: dict[str, Any] = field(default_factory=dict)
    frontend: str = "kaldi_fbank"
    frontend_config: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    untrained: bool = False
    objective: str | None = None
    step: int = 0
    data_hash: str | None = None
    licence: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    embed: dict[str, Any] = field(default_factory=dict)
    """The model's recommended :class:`~echoic.embed.embedder.EmbedConfig` fields (e.g.
    ``{"layer": "mean", "freq_pool": "concat"}``); an Embedder starts from these, and explicit
    settings override them."""


class EchoicModel(torch.nn.Module):
    """Frontend + encoder: ``AudioBatch → EncoderOutput``. Built from a :class:`ModelConfig`."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.frontend = build_frontend(config.frontend, config.frontend_config)
        self.encoder = build_encoder(config.encoder, **config.encoder_config)
        # Store the resolved configs so a saved model rebuilds exactly, even if defaults change.
        self.config = dataclasses.replace(
            config,
            encoder_config=to_dict(self.encoder.config),
            frontend_config=to_dict(self.frontend.config),
        )
        if self.frontend.n_bins != self.encoder.config.n_bins:
            raise CheckpointError(
                f"frontend gives {self.frontend.n_bins} bins but encoder {config.encoder!r} expects "
                f"{self.encoder.config.n_bins}; set frontend_config n_mels={self.encoder.config.n_bins} "
                "or encoder_config n_bins to match."
            )

    @property
    def sample_rate(self) -> int:
        return int(self.frontend.sample_rate)

    @property
    def label(self) -> str:
        """Model name as shown in every output; untrained models say so."""
        name = self.config.name or self.config.encoder
        return f"{name} (UNTRAINED: random weights)" if self.config.untrained else name

    def forward(self, batch: AudioBatch, keep_idx: torch.Tensor | None = None) -> EncoderOutput:
        return self.encoder(self.frontend(batch), keep_idx=keep_idx)


# name → zero-argument factory returning a ready model
MODELS: Registry[Callable[[], EchoicModel]] = Registry("model")


def _random_init(config: ModelConfig, seed: int) -> EchoicModel:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = EchoicModel(config)
    return model.eval()


def _untrained_tiny() -> EchoicModel:
    return _random_init(
        ModelConfig(
            encoder="vit_tiny",
            frontend="kaldi_fbank",
            name="echoic-untrained-tiny",
            untrained=True,
            licence="Apache-2.0",
            provenance={"origin": "fixed random initialisation", "seed": 0},
        ),
        seed=0,
    )


MODELS.register("echoic-untrained-tiny", _untrained_tiny)


def _bundled(path: Path) -> Callable[[], EchoicModel]:
    return lambda: load_dir(path)


if BUNDLED_DIR.is_dir():
    for _cfg in sorted(BUNDLED_DIR.glob(f"*/{CONFIG_FILE}")):
        MODELS.register(_cfg.parent.name, _bundled(_cfg.parent))
# The default: the bundled trained model (docs/models/echoic-tiny.md); a checkout without it
# falls back to the untrained tiny encoder, which says UNTRAINED wherever it is named.
if (BUNDLED_DIR / BUNDLED_DEFAULT / CONFIG_FILE).is_file():
    MODELS.register(DEFAULT_MODEL, _bundled(BUNDLED_DIR / BUNDLED_DEFAULT))
else:
    MODELS.register(DEFAULT_MODEL, _untrained_tiny)


def list_models() -> list[str]:
    """Names accepted by :func:`load` besides model directories."""
    return MODELS.names()


def load(path_or_name: str | os.PathLike[str] = DEFAULT_MODEL) -> EchoicModel:
    """Load a model directory or a registered model name; returns the model in eval mode."""
    path = Path(path_or_name)
    if path.is_dir():
        return load_dir(path)
    name = str(path_or_name)
    if name in MODELS:
        return MODELS.get(name)()
    raise CheckpointError(
        unknown_name_message("model", name, MODELS.names())
        + f" Or pass a directory holding {WEIGHTS_FILE} + {CONFIG_FILE} (written by echoic.save)."
    )


def read_config(path: str | os.PathLike[str]) -> ModelConfig:
    """The :class:`ModelConfig` of a model directory, checking the format version."""
    cfg_path = Path(path) / CONFIG_FILE
    if not cfg_path.is_file():
        raise CheckpointError(
            f"{path}: expected a model directory with {CONFIG_FILE}; found none. "
            "Save models with echoic.save(model, dir)."
        )
    raw = json.loads(cfg_path.read_text())
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{cfg_path}: format_version {version!r} is not supported (expected {FORMAT_VERSION}); "
            "upgrade echoic or re-export the model."
        )
    return from_dict(ModelConfig, raw.get("model"), where=str(cfg_path))


def load_dir(path: str | os.PathLike[str]) -> EchoicModel:
    path = Path(path)
    config = read_config(path)
    weights_path = path / WEIGHTS_FILE
    if not weights_path.is_file():
        raise CheckpointError(f"{path}: expected {WEIGHTS_FILE} beside {CONFIG_FILE}; found none.")
    model = EchoicModel(config)
    state = load_file(str(weights_path))
    check_state_keys(state, model.state_dict(), where=str(weights_path))
    model.load_state_dict(state, strict=True)
    return model.eval()


def check_state_keys(
    found: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], where: str
) -> None:
    """Raise naming the nearest valid key for every unknown key, and listing missing keys/shape clashes."""
    unknown = sorted(set(found) - set(expected))
    if unknown:
        raise CheckpointError(f"{where}: " + unknown_name_message("weight", unknown[0], expected))
    missing = sorted(set(expected) - set(found))
    if missing:
        raise CheckpointError(
            f"{where}: weights missing for {missing[:5]}{' …' if len(missing) > 5 else ''}; "
            "the checkpoint does not match its config.json."
        )
    for key, value in found.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{where}: weight {key!r} has shape {tuple(value.shape)}, expected "
                f"{tuple(expected[key].shape)} from config.json."
            )


def save(model: EchoicModel, directory: str | os.PathLike[str], **updates: Any) -> Path:
    """Write ``model.safetensors`` + ``config.json`` atomically; ``updates`` override config fields."""
    from echoic import __version__

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = dataclasses.replace(model.config, **updates) if updates else model.config
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    payload = {
        "format_version": FORMAT_VERSION,
        "echoic_version": __version__,
        "model": to_dict(config),
    }
    atomic_write(directory / WEIGHTS_FILE, lambda p: save_file(state, p, metadata={"format": "pt"}))
    atomic_write(
        directory / CONFIG_FILE,
        lambda p: Path(p).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n"),
    )
    return directory


def atomic_write(target: Path, write: Callable[[str], object]) -> None:
    """Run ``write(tmp_path)`` then rename onto ``target``: readers never see a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
