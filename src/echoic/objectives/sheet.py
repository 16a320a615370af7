"""The audio–sheet two-tower model: an echoic audio model and an image tower in one joint space.

* Audio tower: an :class:`~echoic.checkpoint.EchoicModel` (frontend + encoder; default ``vit_tiny``
  on a music log-mel: 1024-sample windows every 20 ms, 128 bands from 27.5 Hz to 8 kHz), its last
  layer mean-pooled over the tokens, then ``audio_head`` (Linear → ReLU → Linear).
* Image tower: an :class:`~echoic.vision.ImageEncoder` (default ``sheet_cnn_tiny``) on the ink of
  a snippet image (:func:`echoic.vision.image_batch`), then ``image_head``.
* Both heads end in ``dim`` numbers, L2-normalised; similarity is the cosine. ``logit_scale`` is
  CLIP's learned inverse temperature ``exp(t)``, ``t₀ = log(1 / init_temperature)``, clamped to
  ``[0, log(max_logit_scale)]``.

Losses: :func:`cross_modal_loss` (symmetric InfoNCE of aligned pairs, CLIP's) and :func:`nt_xent`
(SimCLR's loss of two augmented views of one modality, used to pretrain each tower alone).

Saved model directory (:meth:`SheetModel.save`, :meth:`SheetModel.load`): the audio model as any
echoic model (``model.safetensors`` + ``config.json``: ``echoic.load`` reads it), the image tower
(``image_tower.safetensors`` + ``image_tower.json``: name and config), the heads and the scale
(``sheet_heads.safetensors``) and ``sheet.json`` (format version, the :class:`SheetModelConfig`,
the learned ``logit_scale``, provenance).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from echoic.checkpoint import EchoicModel, ModelConfig, atomic_write, load_dir, save
from echoic.config import from_dict, to_dict
from echoic.errors import CheckpointError, ConfigError
from echoic.objectives.audio_text import symmetric_cross_entropy
from echoic.objectives.joint import Head, pool_tokens
from echoic.types import AudioBatch
from echoic.vision import ImageEncoder, build_image_encoder, image_batch

__all__ = [
    "MUSIC_LOGMEL",
    "SheetModel",
    "SheetModelConfig",
    "cross_modal_loss",
    "is_sheet_model",
    "nt_xent",
]

SHEET_FILE = "sheet.json"
HEADS_FILE = "sheet_heads.safetensors"
IMAGE_FILE = "image_tower.safetensors"
IMAGE_JSON = "image_tower.json"
FORMAT_VERSION = 1
MUSIC_LOGMEL: dict[str, Any] = {
    "n_fft": 1024,
    "win_length": 1024,
    "hop_length": 320,
    "n_mels": 128,
    "f_min": 27.5,
    "f_max": 8000.0,
}
"""The audio tower's default frontend config (``logmel``): 64-ms windows resolve low notes."""


@dataclass
class SheetModelConfig:
    """What a :class:`SheetModel` is built from (module docstring). ``frontend_config`` carries
    the log-mel normalisation (``mean``, ``std``) measured on the training audio."""

    audio_encoder: str = "vit_tiny"
    audio_encoder_config: dict[str, Any] = field(default_factory=dict)
    frontend: str = "logmel"
    frontend_config: dict[str, Any] = field(default_factory=lambda: dict(MUSIC_LOGMEL))
    image_encoder: str = "sheet_cnn_tiny"
    image_encoder_config: dict[str, Any] = field(default_factory=dict)
    dim: int = 128
    hidden: int = 256
    init_temperature: float = 0.07
    max_logit_scale: float = 100.0

    def __post_init__(self) -> None:
        if self.dim < 1 or self.hidden < 1:
            raise ConfigError(f"dim and hidden must be >= 1; found {self.dim}, {self.hidden}.")
        if not 1.0 <= 1.0 / self.init_temperature <= self.max_logit_scale:
            raise ConfigError(
                f"expected 1 / max_logit_scale <= init_temperature <= 1; found "
                f"{self.init_temperature} with max_logit_scale {self.max_logit_scale}."
            )


def nt_xent(first: torch.Tensor, second: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's NT-Xent: ``(B, D)`` vectors of two views of the same ``B`` items; each of the
    ``2B`` vectors must pick its other view among the ``2B - 1`` others (cosine / temperature)."""
    z = F.normalize(torch.cat([first, second]), dim=-1)
    n = first.shape[0]
    logits = z @ z.t() / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, target)


def cross_modal_loss(
    audio: torch.Tensor, image: torch.Tensor, logit_scale: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric InfoNCE of L2-normalised ``(B, D)`` audio and image vectors (pair i ↔ i);
    returns the loss and the ``(B, B)`` logits."""
    logits = logit_scale * audio @ image.t()
    return symmetric_cross_entropy(logits), logits


def is_sheet_model(directory: str | os.PathLike[str]) -> bool:
    return (Path(directory) / SHEET_FILE).is_file()


class SheetModel(nn.Module):
    """Audio tower + image tower + heads (module docstring). Build with a config (random
    weights) or :meth:`load`."""

    def __init__(self, config: SheetModelConfig) -> None:
        super().__init__()
        self.config = config
        self.audio = EchoicModel(
            ModelConfig(
                encoder=config.audio_encoder,
                encoder_config=dict(config.audio_encoder_config),
                frontend=config.frontend,
                frontend_config=dict(config.frontend_config),
                name="sheet-audio",
                objective="sheet_contrastive",
            )
        )
        self.image: ImageEncoder = build_image_encoder(
            config.image_encoder, **config.image_encoder_config
        )
        width = self.audio.encoder.spec.width
        self.audio_head = Head([width, config.hidden, config.dim])
        self.image_head = Head([self.image.dim, config.hidden, config.dim])
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / config.init_temperature)))

    @property
    def sample_rate(self) -> int:
        return self.audio.sample_rate

    @property
    def audio_width(self) -> int:
        return int(self.audio.encoder.spec.width)

    def scale(self) -> torch.Tensor:
        """``exp(t)`` with ``t`` clamped to ``[0, log(max_logit_scale)]``."""
        return self.logit_scale.clamp(0.0, math.log(self.config.max_logit_scale)).exp()

    @torch.no_grad()
    def clamp_scale(self) -> None:
        """Clamp ``t`` itself (after every optimiser step, as CLIP does)."""
        self.logit_scale.clamp_(0.0, math.log(self.config.max_logit_scale))

    # ---------------------------------------------------------------- towers
    def audio_features(self, waveform: torch.Tensor) -> torch.Tensor:
        """``(B, S)`` float audio at :attr:`sample_rate` → ``(B, width)`` mean-pooled tokens."""
        lengths = torch.full((waveform.shape[0],), waveform.shape[1], dtype=torch.long)
        batch = AudioBatch(waveform, lengths.to(waveform.device), self.sample_rate)
        return pool_tokens(self.audio(batch), "mean")

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)`` ink → ``(B, image dim)``."""
        return self.image(images)

    def embed_audio(self, waveform: torch.Tensor) -> torch.Tensor:
        """``(B, S)`` audio → ``(B, dim)`` L2-normalised joint vectors."""
        return F.normalize(self.audio_head(self.audio_features(waveform)), dim=-1)

    def embed_image(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)`` ink → ``(B, dim)`` L2-normalised joint vectors."""
        return F.normalize(self.image_head(self.image_features(images)), dim=-1)

    @torch.inference_mode()
    def embed_waves(self, waves: np.ndarray, batch_size: int = 32) -> torch.Tensor:
        """``(N, S)`` int16 or float clips at :attr:`sample_rate` → ``(N, dim)`` (eval mode)."""
        was = self.training
        self.eval()
        scale = 1 / 32768.0 if waves.dtype == np.int16 else 1.0
        parts = [
            self.embed_audio(torch.from_numpy(waves[i : i + batch_size].astype(np.float32) * scale))
            for i in range(0, len(waves), batch_size)
        ]
        self.train(was)
        return torch.cat(parts) if parts else torch.zeros(0, self.config.dim)

    @torch.inference_mode()
    def embed_pages(self, images: Sequence[np.ndarray], batch_size: int = 64) -> torch.Tensor:
        """``(h, w)`` uint8 grayscale snippet images → ``(N, dim)`` (eval mode)."""
        was = self.training
        self.eval()
        height, width = self.image.height, self.image.width
        parts = [
            self.embed_image(image_batch(images[i : i + batch_size], height, width))
            for i in range(0, len(images), batch_size)
        ]
        self.train(was)
        return torch.cat(parts) if parts else torch.zeros(0, self.config.dim)

    # ---------------------------------------------------------------- files
    def save(self, directory: str | os.PathLike[str], **provenance: Any) -> Path:
        """Write the model directory (module docstring); ``provenance`` goes into sheet.json."""
        directory = Path(directory)
        save(self.audio, directory, provenance=dict(provenance))
        image_state = {k: v.detach().contiguous().cpu() for k, v in self.image.state_dict().items()}
        atomic_write(directory / IMAGE_FILE, lambda p: save_file(image_state, p))
        image_meta = {"name": self.config.image_encoder, "config": to_dict(self.image.config)}
        _write_json(directory / IMAGE_JSON, image_meta)
        heads = {f"audio_head.{k}": v for k, v in self.audio_head.state_dict().items()}
        heads.update({f"image_head.{k}": v for k, v in self.image_head.state_dict().items()})
        heads["logit_scale"] = self.logit_scale.detach().reshape(1)
        heads = {k: v.detach().contiguous().cpu() for k, v in heads.items()}
        atomic_write(directory / HEADS_FILE, lambda p: save_file(heads, p))
        meta = {
            "format_version": FORMAT_VERSION,
            "config": to_dict(self.config),
            "logit_scale": float(self.scale().detach()),
            "provenance": provenance,
        }
        _write_json(directory / SHEET_FILE, meta)
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> SheetModel:
        """Load a directory written by :meth:`save`."""
        directory = Path(directory)
        if not is_sheet_model(directory):
            raise CheckpointError(
                f"{directory}: no {SHEET_FILE}; expected a directory written by "
                "SheetModel.save (benchmarks/sheet_retrieval.py writes one per run)."
            )
        meta = json.loads((directory / SHEET_FILE).read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(
                f"{directory / SHEET_FILE}: format_version {meta.get('format_version')!r}; "
                f"expected {FORMAT_VERSION}. Upgrade echoic or retrain."
            )
        config = from_dict(SheetModelConfig, meta["config"], where=str(directory / SHEET_FILE))
        model = cls(config)
        model.audio.load_state_dict(load_dir(directory).state_dict(), strict=True)
        model.image.load_state_dict(load_file(str(directory / IMAGE_FILE)), strict=True)
        heads = load_file(str(directory / HEADS_FILE))
        for prefix, head in (("audio_head.", model.audio_head), ("image_head.", model.image_head)):
            head.load_state_dict(
                {k[len(prefix) :]: v for k, v in heads.items() if k.startswith(prefix)},
                strict=True,
            )
        with torch.no_grad():
            model.logit_scale.copy_(heads["logit_scale"].reshape(()))
        return model.eval()


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    text = json.dumps(payload, indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda p: Path(p).write_text(text))
