"""BYOL-A v1 (Niizumi et al. 2021): the AudioNTT2020 CNN over a normalised log-mel spectrogram.

The s3prl ``byol_a`` upstream (``upstream/byol_a/byol_a.py``, from nttcslab/byol-a) reads a 64-bin
log-mel spectrogram — torchaudio's centred ``MelSpectrogram`` (1024-point FFT and window, 10 ms
hop, 60–7800 Hz), ``log(mel + float32 eps)``, ``(x + 5.4919195) / 5.0389895`` (the
``centred_mel`` frontend, see the converter) — through:

1. three stages of ``Conv2d(3 × 3, padding 1) → BatchNorm2d → ReLU → MaxPool2d(2)`` over
   ``(mel, time)`` (``channels`` maps; 64 bins → 8, ``T`` frames → ``⌊T / 8⌋`` steps);
2. per time step, the ``(mel, channel)`` map flattened mel-major, ``Linear → ReLU`` (layer 0),
   dropout (off at inference), ``Linear → ReLU`` (layer 1, the frames).

BYOL-A's embedding is the temporal **mean + max** of those frames (``AudioNTT2020.forward``):
:meth:`BYOLAEncoder.embedding`, and the pooling a converted model asks the Embedder for
(``scene_pool: "mean+max"``). One token every 8 frames (80 ms), declared as reading those 8
frames, which centres it right; the convolutions also read 7 frames before and 7 after them,
zero-padded at the input's ends. A partial last group is dropped, as the pooling drops it. The
Embedder gives a chunk the samples its tokens' declared frames cover, so a chunk's last token or
two lack some right context that a longer input would give them — an edge effect of a chunk's
end (overlapping chunks are stitched away from their edges). Padded frames are zeroed before every
convolution, so an item gives in a batch what it gives alone. ``byol_a`` is the published 2048-d
model (512 and 1024 load from their converted configs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from echoic.encoders.base import EncoderSpec
from echoic.encoders.frame_tokens import FrameEncoder, frame_spec
from echoic.encoders.registry import ENCODERS
from echoic.errors import ConfigError
from echoic.types import EncoderOutput, Features

__all__ = ["STAGES", "BYOLAConfig", "BYOLAEncoder"]

STAGES = 3
"""Convolution + 2 × 2 max-pooling stages of AudioNTT2020."""


@dataclass
class BYOLAConfig:
    """Size of a :class:`BYOLAEncoder`: ``dim`` (s3prl's ``feature_d``), ``n_bins`` mel bins,
    ``channels`` feature maps per convolution."""

    dim: int = 2048
    n_bins: int = 64
    channels: int = 64

    def __post_init__(self) -> None:
        if self.dim < 1 or self.channels < 1 or self.n_bins < 2**STAGES:
            raise ConfigError(
                f"BYOLAConfig needs dim, channels >= 1 and n_bins >= {2**STAGES}; found "
                f"{self.dim}, {self.channels}, {self.n_bins}."
            )

    def build(self) -> BYOLAEncoder:
        return BYOLAEncoder(self)

    def spec(self) -> EncoderSpec:
        """One token per 8 frames (the three poolings), two layers (``depth = 1``)."""
        return frame_spec(self.n_bins, self.dim, 1, stride=2**STAGES)


class BYOLAEncoder(FrameEncoder[BYOLAConfig]):
    """``Features (B, n_bins, T)`` → 2 layers of ``(B, ⌊T / 8⌋, dim)``."""

    family = "BYOL-A"
    frontend = "centred_mel"

    def __init__(self, config: BYOLAConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        self.convs = nn.ModuleList(
            nn.Conv2d(1 if i == 0 else c, c, 3, padding=1) for i in range(STAGES)
        )
        self.norms = nn.ModuleList(nn.BatchNorm2d(c) for _ in range(STAGES))
        self.pool = nn.MaxPool2d(2, stride=2)
        self.fc1 = nn.Linear(c * (config.n_bins // 2**STAGES), config.dim)
        self.fc2 = nn.Linear(config.dim, config.dim)

    def _first_layer(self, features: Features) -> torch.Tensor:
        """The CNN and the first Linear + ReLU: ``(B, ⌊T / 8⌋, dim)`` (layer 0)."""
        x = self._values(features)[:, None]  # (B, 1, mel, time)
        lengths = features.lengths.to(x.device)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = self.pool(torch.relu(norm(conv(x))))
            lengths = torch.div(lengths, 2, rounding_mode="floor")
            steps = torch.arange(x.shape[-1], device=x.device)
            x = x.masked_fill((steps[None, :] >= lengths[:, None])[:, None, None, :], 0.0)
        b, c, f, t = x.shape
        return torch.relu(self.fc1(x.permute(0, 3, 2, 1).reshape(b, t, f * c)))

    def _layers(
        self, tokens: torch.Tensor, padding_mask: torch.Tensor, features: Features
    ) -> list[torch.Tensor]:
        """Layer 0 and the second Linear + ReLU: the frames (layer 1)."""
        return [tokens, torch.relu(self.fc2(tokens))]

    @staticmethod
    def embedding(output: EncoderOutput) -> torch.Tensor:
        """``(B, dim)`` BYOL-A's clip embedding: mean + max over each item's valid frames of the
        last layer (``AudioNTT2020.forward``)."""
        frames, padded = output.last, output.padding_mask[..., None]
        count = (~padded).sum(1).clamp_min(1)
        mean = frames.masked_fill(padded, 0.0).sum(1) / count
        return mean + frames.masked_fill(padded, float("-inf")).amax(1)


ENCODERS.register("byol_a", BYOLAConfig)
ENCODERS.register("byol_a_test", lambda: BYOLAConfig(dim=32, channels=8))
