"""The HEAR 2021 API over an echoic model (exposed as the module ``echoic.hear``).

``load_model(model_file_path="", **opts)`` takes a model directory or registered name ("" = the
default model) plus :class:`~echoic.embed.embedder.EmbedConfig` options (``layer``, ``chunk_s``,
``max_timestamp_hop_ms`` …). Audio is ``(n_sounds, n_samples)`` float32 at ``model.sample_rate``;
embeddings are float32, timestamps in ms on a regular hop.
"""

from __future__ import annotations

from typing import Any

import torch

from echoic.cards import ECHOIC_KINDS, find_card
from echoic.checkpoint import DEFAULT_MODEL
from echoic.embed.embedder import Embedder
from echoic.errors import CheckpointError


class HearModel(torch.nn.Module):
    """What HEAR's harness holds: the embedder plus the three required attributes."""

    def __init__(self, embedder: Embedder) -> None:
        super().__init__()
        self.embedder = embedder
        self.encoder_model = embedder.model  # registered as a sub-module for .to()/.eval()
        self.sample_rate = embedder.sample_rate
        self.scene_embedding_size = embedder.embedding_size
        self.timestamp_embedding_size = embedder.embedding_size


def load_model(model_file_path: str = "", **opts: Any) -> HearModel:
    card = find_card(model_file_path or DEFAULT_MODEL)  # names resolve through the card registry
    if card.kind not in ECHOIC_KINDS:
        raise CheckpointError(
            f"the HEAR module serves echoic models (kinds {ECHOIC_KINDS}); {card.name!r} is a "
            f"{card.kind} model: evaluate it with echoic eval --model {card.name}, or pass an "
            "echoic model name or directory"
        )
    return HearModel(Embedder(card.build(), **opts))


def _check_audio(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    if not isinstance(audio, torch.Tensor) or audio.ndim != 2:
        shape = tuple(audio.shape) if hasattr(audio, "shape") else type(audio).__name__
        raise ValueError(f"expected audio as a (n_sounds, n_samples) tensor; found {shape}")
    return audio.detach().to("cpu", torch.float32)


def get_timestamp_embeddings(
    audio: torch.Tensor, model: HearModel
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(n_sounds, n_timestamps, D)`` embeddings and ``(n_sounds, n_timestamps)`` times in ms."""
    audio = _check_audio(audio, model)
    if audio.shape[0] == 0:
        size = model.timestamp_embedding_size
        return torch.zeros(0, 0, size), torch.zeros(0, 0)
    pairs = model.embedder.timestamp_embeddings(list(audio))
    emb = torch.stack([p[0] for p in pairs]).float()
    times = torch.stack([p[1] for p in pairs]).float()
    return emb, times


def get_scene_embeddings(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    """``(n_sounds, D)`` float32 scene embeddings."""
    audio = _check_audio(audio, model)
    if audio.shape[0] == 0:
        return torch.zeros(0, model.scene_embedding_size)
    return model.embedder.scene_embeddings(list(audio)).float()
