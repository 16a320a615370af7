"""``bag_of_tokens``: token histograms of a fitted tokenizer as embeddings (the token probe).

A tokenizer directory written by ``echoic tokenizer fit`` is also a model directory
(``config.json`` naming encoder ``"bag_of_tokens"``), so ``echoic eval --model TOKENIZER_DIR``
scores its tokens with the linear / kNN / HEAR probes like any embedding, and ``echoic embed``
writes its histograms. The frames come from the model, layer and input the tokenizer was fit on
(its ``tokenizer.json`` ``source``); each frame's ids become one-hots, one block per codebook.

Scene embedding: the relative frequency of every id over the clip, per codebook (each block sums
to 1): ``sum(codebook_sizes)`` values. Native frames: the same over ``context_ms`` centred on
every token frame (one per encoder time step).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from echoic.cards import ModelCard
from echoic.checkpoint import CONFIG_FILE, FORMAT_VERSION, ModelConfig, atomic_write
from echoic.config import to_dict
from echoic.embed.token_frames import recorded_source
from echoic.embed.tokenize import tokenize_clips
from echoic.errors import ConfigError
from echoic.tokenizers.base import SIDECAR_FILE, Tokenizer, load_tokenizer
from echoic.zoo.base import NativeFrames, ZooModel
from echoic.zoo.cards.bag_of_tokens import ENCODER
from echoic.zoo.registry import ModelUnavailable
from echoic.zoo.stats import window_means

__all__ = ["ENCODER", "TokenHistogramModel", "write_model_config"]


class TokenHistogramModel(ZooModel):
    """Histograms of a tokenizer's ids (see module docstring)."""

    name = "bag_of_tokens"

    def __init__(self, directory: str | os.PathLike[str], context_ms: float = 1000.0) -> None:
        self.directory = str(directory)
        with torch.random.fork_rng(devices=[]):  # building draws weights that are overwritten
            self.tokenizer = load_tokenizer(directory).eval()
            self.source = recorded_source(self.tokenizer.source)
        self.sizes = self.tokenizer.codebook_sizes
        self.embedding_size = int(sum(self.sizes))
        self.sample_rate = self.source.sample_rate
        self.min_samples = self.source.min_samples
        self.frame_hop_ms = self.source.hop_ms
        if context_ms <= 0:
            raise ConfigError(f"context_ms must be > 0; found {context_ms}")
        self.context_ms = float(context_ms)
        self._half = max(0, math.floor(context_ms / self.frame_hop_ms / 2))
        self.label = f"bag_of_tokens ({self.tokenizer.name}, {self.directory})"

    def one_hots(self, ids: np.ndarray) -> torch.Tensor:
        """``(T, sum K)`` float64 one-hots of ids ``(n_codebooks, T)``."""
        blocks = [
            torch.nn.functional.one_hot(torch.from_numpy(row).long(), k).double()
            for row, k in zip(ids, self.sizes, strict=True)
        ]
        return torch.cat(blocks, dim=1)

    def native(self, clips: list[np.ndarray]) -> list[NativeFrames]:
        out = []
        for ids, first_ms in tokenize_clips(self.source, self.tokenizer, clips):
            hots = self.one_hots(ids)
            centres = torch.arange(hots.shape[0])
            frames = window_means(hots, centres, self._half).float()
            times = first_ms + centres.double() * self.frame_hop_ms
            out.append(NativeFrames(frames, times, hots.mean(0).float()))
        return out

    def identity_payload(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "tokenizer": self.tokenizer.identity,
            "frames": self.source.identity,
            "context_ms": self.context_ms,
        }


def write_model_config(directory: str | os.PathLike[str], tokenizer: Tokenizer) -> Path:
    """Write ``config.json`` into a tokenizer directory, making it a ``bag_of_tokens`` model
    directory (``echoic eval --model DIR``)."""
    from echoic import __version__

    directory = Path(directory)
    config = ModelConfig(
        encoder=ENCODER,
        encoder_config={
            "tokenizer": tokenizer.name,
            "codebook_sizes": list(tokenizer.codebook_sizes),
            "sample_rate": tokenizer.source.get("sample_rate"),
        },
        frontend="none",
        name=f"bag_of_tokens-{tokenizer.name}",
        objective=f"tokenizer fit ({tokenizer.name})",
        licence="Apache-2.0 (code); the fitted tokenizer derives from its fit audio and model",
        provenance={"origin": f"echoic tokenizer fit ({tokenizer.name})", **tokenizer.source},
    )
    payload = {"format_version": FORMAT_VERSION, "echoic_version": __version__}
    payload["model"] = to_dict(config)
    text = json.dumps(payload, indent=2, sort_keys=True) + "\n"
    atomic_write(directory / CONFIG_FILE, lambda p: Path(p).write_text(text))
    return directory


def build(path: str | os.PathLike[str] | None = None, **options: Any) -> TokenHistogramModel:
    """``resolve_model(TOKENIZER_DIR)`` or ``resolve_model("bag_of_tokens", path=DIR)``."""
    if path is None or not (Path(path) / SIDECAR_FILE).is_file():
        raise ModelUnavailable(
            "model 'bag_of_tokens' needs a fitted tokenizer directory: echoic tokenizer fit "
            "--tokenizer kmeans --model MODEL AUDIO... --out DIR, then pass DIR as the model"
        )
    return TokenHistogramModel(path, **options)


def fitted_card(card: ModelCard, config: ModelConfig) -> ModelCard:
    import dataclasses

    sizes = config.encoder_config.get("codebook_sizes") or []
    rate = config.encoder_config.get("sample_rate") or card.sample_rate
    return dataclasses.replace(
        card, embedding_size=int(sum(sizes)) or card.embedding_size, sample_rate=rate
    )
