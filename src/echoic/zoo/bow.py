"""``bow``: a bag-of-audio-words statistics encoder (a baseline fit on unlabelled audio).

After the "good embeddings with statistics are enough" line of work (Verma, 2021/22: bottlenecks of
spectral patches from small feed-forward auto-encoders, clustered into codebooks, clips described by
code counts) and bag-of-audio-words before it:

1. log-mel (16 kHz, 25 ms / 10 ms, 64 bands), standardised per band with statistics of the fit
   audio;
2. at every frame, a patch centred on it at each of two time scales (``patch_frames``: 4 frames
   ≈ 40 ms "micro", 32 frames ≈ 320 ms "macro"; edges repeat the first / last frame), flattened;
3. each scale's auto-encoder (``P·F → hidden → bottleneck``, ReLU; only the encoder is kept) maps
   the patch to a ``bottleneck``-d code, and the scale's k-means codebook assigns it a word;
4. the embedding is the histogram of words per scale (relative frequencies, each scale summing to
   1), concatenated: ``sum(codebook_sizes)`` = 128 values. Scene: over the whole clip; native
   frames: over ``context_ms`` (250 ms) centred every ``frame_hop_ms`` (40 ms).

Fit with ``echoic fit-bow --audio DIR --out model/`` (:mod:`echoic.zoo.bow_fit`); the directory is
an echoic model directory (``model.safetensors`` + ``config.json``, encoder ``"bow"``) accepted
wherever a model is (``echoic.load(dir)``, ``resolve_model(dir)``), or
``resolve_model("bow", path=dir)``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from echoic.cards import ModelCard
from echoic.checkpoint import (
    CONFIG_FILE,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    ModelConfig,
    atomic_write,
    check_state_keys,
    read_config,
)
from echoic.config import from_dict, to_dict
from echoic.errors import CheckpointError, ConfigError
from echoic.features.base import build_frontend
from echoic.zoo.base import tensor_digest
from echoic.zoo.cards.bow import BOW_ENCODER
from echoic.zoo.logmel_stats import LogMelStatsConfig
from echoic.zoo.registry import ModelUnavailable
from echoic.zoo.stats import ContextConfig, StatsModel


@dataclass
class BowConfig:
    """Shape of a :class:`BowModel` (saved as ``encoder_config`` in ``config.json``)."""

    sample_rate: int = 16000
    n_mels: int = 64
    patch_frames: tuple[int, ...] = (4, 32)
    codebook_sizes: tuple[int, ...] = (64, 64)
    hidden: int = 256
    bottleneck: int = 16
    frame_hop_ms: float = 40.0
    context_ms: float = 250.0

    def __post_init__(self) -> None:
        self.patch_frames = tuple(int(p) for p in self.patch_frames)
        self.codebook_sizes = tuple(int(k) for k in self.codebook_sizes)
        if len(self.patch_frames) != len(self.codebook_sizes) or not self.patch_frames:
            raise ConfigError(
                "BowConfig needs one codebook size per patch scale; found patch_frames="
                f"{self.patch_frames}, codebook_sizes={self.codebook_sizes}"
            )
        if min(self.patch_frames) < 1 or min(self.codebook_sizes) < 2:
            raise ConfigError(
                f"patch_frames must be >= 1 and codebook_sizes >= 2; found {self.patch_frames}, "
                f"{self.codebook_sizes}"
            )

    def mel(self) -> LogMelStatsConfig:
        return LogMelStatsConfig(sample_rate=self.sample_rate, n_mels=self.n_mels)


def patch_encoder(n_in: int, hidden: int, bottleneck: int) -> nn.Sequential:
    """``(N, n_in) → (N, bottleneck)`` encoder half of a patch auto-encoder."""
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, bottleneck))


def patch_decoder(n_out: int, hidden: int, bottleneck: int) -> nn.Sequential:
    """``(N, bottleneck) → (N, n_out)`` decoder half (used while fitting only)."""
    return nn.Sequential(nn.Linear(bottleneck, hidden), nn.ReLU(), nn.Linear(hidden, n_out))


def patches(x: torch.Tensor, size: int, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Patches of ``size`` frames centred on frames ``rows`` (default all) of ``x`` ``(T, F)``.

    Frame ``t``'s patch is frames ``t - size // 2 … t - size // 2 + size - 1`` with indices clamped
    to ``[0, T)``. Returns ``(N, size * F)`` flattened time-major.
    """
    n = x.shape[0]
    rows = torch.arange(n) if rows is None else rows
    idx = (rows[:, None] + torch.arange(size)[None, :] - size // 2).clamp(0, n - 1)
    return x[idx].reshape(rows.shape[0], size * x.shape[1])


class BowNet(nn.Module):
    """The fitted pieces: per-band normalisation, one patch encoder and codebook per scale."""

    def __init__(self, config: BowConfig) -> None:
        super().__init__()
        self.config = config
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.zeros(config.n_mels))
        self.register_buffer("std", torch.ones(config.n_mels))
        self.encoders = nn.ModuleList(
            patch_encoder(p * config.n_mels, config.hidden, config.bottleneck)
            for p in config.patch_frames
        )
        self.codebooks = nn.ParameterList(
            nn.Parameter(torch.zeros(k, config.bottleneck), requires_grad=False)
            for k in config.codebook_sizes
        )

    def normalise(self, logmel: torch.Tensor) -> torch.Tensor:
        """``(T, F)`` log-mel → standardised ``(T, F)``."""
        return (logmel - self.mean) / self.std

    def words(self, x: torch.Tensor, chunk: int = 4096) -> list[torch.Tensor]:
        """Standardised ``(T, F)`` → per scale ``(T,)`` int64 codeword of each frame's patch."""
        out = []
        for size, encoder, codebook in zip(
            self.config.patch_frames, self.encoders, self.codebooks, strict=True
        ):
            parts = []
            for start in range(0, x.shape[0], chunk):
                rows = torch.arange(start, min(start + chunk, x.shape[0]))
                codes = encoder(patches(x, size, rows))
                parts.append(torch.cdist(codes, codebook).argmin(1))
            out.append(torch.cat(parts))
        return out


class BowModel(StatsModel):
    """Histograms of codewords at two scales: ``(sum(codebook_sizes),)`` scene, frames every 40 ms."""

    name = "bow"

    def __init__(self, config: BowConfig, net: BowNet | None = None, where: str = "") -> None:
        self.config: BowConfig = config
        self.net = (net or BowNet(config)).eval()
        self.frontend = build_frontend("logmel", config.mel().frontend_config())
        self.context = ContextConfig(config.frame_hop_ms, config.context_ms)
        self.embedding_size = sum(config.codebook_sizes)
        self.where = where
        self.label = f"bow ({where})" if where else "bow (unsaved)"
        self._setup_geometry()

    def descriptors(self, clip: np.ndarray) -> torch.Tensor:
        x = self.net.normalise(self.features(clip))
        hists = [
            nn.functional.one_hot(w, k).to(torch.float64)
            for w, k in zip(self.net.words(x), self.config.codebook_sizes, strict=True)
        ]
        return torch.cat(hists, dim=1)

    def summarise(self, means: torch.Tensor) -> torch.Tensor:
        return means

    def identity_payload(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "config": to_dict(self.config),
            "weights": tensor_digest(self.net.state_dict()),
        }


def save_bow(model: BowModel, directory: str | os.PathLike[str], **model_config: Any) -> Path:
    """Write ``model.safetensors`` + ``config.json`` (echoic format, encoder ``"bow"``)."""
    from echoic import __version__

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = ModelConfig(
        encoder=BOW_ENCODER,
        encoder_config=to_dict(model.config),
        frontend="logmel",
        frontend_config=to_dict(model.frontend.config),
        name="bow",
        objective="patch-autoencoder+kmeans",
        licence="Apache-2.0 (code); the fitted statistics derive from the fit audio",
    )
    config = dataclasses.replace(config, **model_config)
    payload = {"format_version": FORMAT_VERSION, "echoic_version": __version__}
    payload["model"] = to_dict(config)
    state = {k: v.detach().contiguous().cpu() for k, v in model.net.state_dict().items()}
    atomic_write(directory / WEIGHTS_FILE, lambda p: save_file(state, p, metadata={"format": "pt"}))
    text = json.dumps(payload, indent=2, sort_keys=True) + "\n"
    atomic_write(directory / CONFIG_FILE, lambda p: Path(p).write_text(text))
    return directory


def load_bow(directory: str | os.PathLike[str], **options: Any) -> BowModel:
    """Load a directory written by :func:`save_bow`; ``options`` override ``frame_hop_ms`` /
    ``context_ms`` (the only settings that do not change the fitted weights)."""
    directory = Path(directory)
    config = read_config(directory)
    if config.encoder != BOW_ENCODER:
        raise CheckpointError(
            f"{directory}: config.json names encoder {config.encoder!r}, expected {BOW_ENCODER!r}; "
            "fit one with: echoic fit-bow --audio DIR --out MODEL_DIR"
        )
    bow_config = from_dict(BowConfig, config.encoder_config, where=f"{directory}/{CONFIG_FILE}")
    allowed = {"frame_hop_ms", "context_ms"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(f"bow options {unknown} are not allowed; valid: {sorted(allowed)}")
    bow_config = dataclasses.replace(bow_config, **options)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{directory}: expected {WEIGHTS_FILE} beside {CONFIG_FILE}.")
    with torch.random.fork_rng(devices=[]):  # the weights are overwritten below
        net = BowNet(bow_config)
    state = load_file(str(weights))
    check_state_keys(state, net.state_dict(), where=str(weights))
    net.load_state_dict(state, strict=True)
    return BowModel(bow_config, net, where=str(directory))


def build(path: str | os.PathLike[str] | None = None, **options: Any) -> BowModel:
    """``resolve_model("bow", path=DIR)``: a fitted bow model directory."""
    if path is None:
        raise ModelUnavailable(
            "model 'bow' must be fit on unlabelled audio first: echoic fit-bow --audio DIR "
            "--out MODEL_DIR, then pass MODEL_DIR as the model (or path=MODEL_DIR)"
        )
    return load_bow(path, **options)


def fitted_card(card: ModelCard, config: ModelConfig) -> ModelCard:
    """The card of a fitted directory: its own sizes (``sum(codebook_sizes)``, its rate)."""
    fitted = from_dict(BowConfig, config.encoder_config, where=f"{card.name}/{CONFIG_FILE}")
    size, rate = sum(fitted.codebook_sizes), fitted.sample_rate
    return dataclasses.replace(card, embedding_size=size, sample_rate=rate)
