"""Model directories (``model.safetensors`` + ``config.json``) and loading echoic models by name.

A model directory is self-describing: ``config.json`` holds the format version, the echoic version,
the encoder name + full config, the frontend name + full config (normalisation stats included), the
objective, step and data hash of training, and provenance / licence. ``load`` accepts a directory or
a registered echoic model name (the card registry, :mod:`echoic.cards`, holds every name); weights
are read with safetensors only (no pickle). The torch-free part of the format (file names,
:class:`ModelConfig`, :func:`read_config`, :func:`atomic_write`) lives in :mod:`echoic.model_format`
and is re-exported here.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from echoic.config import from_dict, to_dict
from echoic.encoders import build_encoder
from echoic.encoders.base import Encoder, EncoderSpec, TokenGeometry, token_geometry
from echoic.encoders.registry import encoder_config
from echoic.errors import CheckpointError
from echoic.features.base import FRONTENDS, Frontend, build_frontend
from echoic.model_format import BUNDLED_DEFAULT as BUNDLED_DEFAULT
from echoic.model_format import BUNDLED_DIR as BUNDLED_DIR
from echoic.model_format import CONFIG_FILE as CONFIG_FILE
from echoic.model_format import DEFAULT_MODEL as DEFAULT_MODEL
from echoic.model_format import FORMAT_VERSION as FORMAT_VERSION
from echoic.model_format import WEIGHTS_FILE as WEIGHTS_FILE
from echoic.model_format import DeclaredSizes, sizes_block
from echoic.model_format import ModelConfig as ModelConfig
from echoic.model_format import atomic_write as atomic_write
from echoic.model_format import read_config as read_config
from echoic.registry import unknown_name_message
from echoic.types import AudioBatch, EncoderOutput


def check_pairing(
    spec: EncoderSpec, frontend: Frontend, encoder_name: str, frontend_name: str
) -> None:
    """Raise :class:`CheckpointError` unless ``frontend`` gives what the encoder reads: the same
    input kind (spectral frames or waveform samples), bin count and channel count."""
    if spec.input != frontend.output_kind:
        want = "waveform" if spec.input == "waveform" else "kaldi_fbank"
        raise CheckpointError(
            f"encoder {encoder_name!r} reads {spec.input} but frontend {frontend_name!r} gives "
            f"{frontend.output_kind}; use frontend={want!r} (or another frontend giving "
            f"{spec.input}) with it."
        )
    if frontend.n_bins != spec.n_bins:
        raise CheckpointError(
            f"frontend gives {frontend.n_bins} bins but encoder {encoder_name!r} expects "
            f"{spec.n_bins}; set frontend_config n_mels={spec.n_bins} or encoder_config n_bins "
            "to match."
        )
    if frontend.out_channels != spec.channels:
        raise CheckpointError(
            f"frontend gives {frontend.out_channels} channel(s) {frontend.channel_names} but "
            f"encoder {encoder_name!r} reads {spec.channels}; set the encoder's in_channels="
            f"{frontend.out_channels}, or the frontend_config channels / interchannel to match."
        )


class EchoicModel(torch.nn.Module):
    """Frontend + encoder: ``AudioBatch → EncoderOutput``. Built from a :class:`ModelConfig`."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.frontend: Frontend = build_frontend(config.frontend, config.frontend_config)
        self.encoder: Encoder = build_encoder(config.encoder, **config.encoder_config)
        # Store the resolved configs so a saved model rebuilds exactly, even if defaults change.
        self.config = dataclasses.replace(
            config,
            encoder_config=to_dict(self.encoder.config),
            frontend_config=to_dict(self.frontend.config),
        )
        check_pairing(self.encoder.spec, self.frontend, config.encoder, config.frontend)

    @property
    def sample_rate(self) -> int:
        return int(self.frontend.sample_rate)

    @property
    def geometry(self) -> TokenGeometry:
        """The encoder's token timing in samples and seconds through this frontend."""
        f = self.frontend
        return token_geometry(
            self.encoder.spec, f.sample_rate, f.hop_length, f.win_length, f.first_centre_s
        )

    @property
    def label(self) -> str:
        """Model name as shown in every output; untrained models say so."""
        name = self.config.name or self.config.encoder
        return f"{name} (UNTRAINED: random weights)" if self.config.untrained else name

    def forward(self, batch: AudioBatch, keep_idx: torch.Tensor | None = None) -> EncoderOutput:
        return self.encoder(self.frontend(batch), keep_idx=keep_idx)


def list_models() -> list[str]:
    """Every registered model name (the card registry, :mod:`echoic.cards`): what ``load`` and
    every CLI verb accept besides model directories."""
    from echoic.cards import CARDS

    return CARDS.names()


def load(path_or_name: str | os.PathLike[str] = DEFAULT_MODEL) -> EchoicModel:
    """Load an echoic (or converted) model directory or registered name, in eval mode.

    Names resolve through the card registry (:func:`echoic.cards.find_card`); a baseline or peer
    name raises — :func:`echoic.load` builds any card, this function only echoic models.
    """
    from echoic.cards import ECHOIC_KINDS, find_card

    card = find_card(path_or_name)
    if card.kind not in ECHOIC_KINDS:
        raise CheckpointError(
            f"{str(path_or_name)!r} is a {card.kind} model, not an echoic model (expected a kind "
            f"in {ECHOIC_KINDS}); build it with echoic.load({str(path_or_name)!r}) or "
            "echoic.zoo.registry.resolve_model, or pass an echoic model name or directory"
        )
    model = card.build()
    assert isinstance(model, EchoicModel), f"card {card.name!r} of kind {card.kind} built {model!r}"
    return model


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


DEFAULT_FREQ_POOL = "mean"  # EmbedConfig.freq_pool's default (checked by the card contract test)


def compute_sizes(config: ModelConfig) -> DeclaredSizes:
    """``(sample_rate, embedding_size, layer_sizes)`` of an echoic model, from its config alone.

    The frontend's and encoder's config dataclasses are resolved (registered defaults + the saved
    fields); no module is built. The embedding size follows the recommended ``embed.freq_pool``:
    ``width`` for ``"mean"``, ``width × frequency patches`` for ``"concat"``. :func:`save` writes
    them into ``config.json`` so that listing models reads them without this registry (no torch).
    """
    where = f"model {config.name or config.encoder!r}"
    frontend_class, _ = FRONTENDS.get(config.frontend)
    frontend = from_dict(frontend_class, config.frontend_config, where=f"{where} frontend_config")
    spec = encoder_config(config.encoder, **config.encoder_config).spec()
    width, depth, freq_tokens = spec.width, spec.depth, spec.freq_tokens
    pool = config.embed.get("freq_pool", DEFAULT_FREQ_POOL)
    size = width * freq_tokens if pool == "concat" else width
    return int(frontend.sample_rate), size, (size,) * (depth + 1)


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
        "card": sizes_block(config, compute_sizes(config)),
    }
    atomic_write(directory / WEIGHTS_FILE, lambda p: save_file(state, p, metadata={"format": "pt"}))
    atomic_write(
        directory / CONFIG_FILE,
        lambda p: Path(p).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n"),
    )
    return directory
