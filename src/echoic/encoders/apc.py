"""APC, autoregressive predictive coding (Chung et al. 2019): a stack of unidirectional GRUs.

The s3prl ``apc`` upstream (``upstream/apc/apc.py``) reads one feature frame per step — 80-bin
Kaldi fbank, 10 ms apart, normalised per utterance (``kaldi_fbank`` with a Hamming window and
``cmvn``, see the converter) — through ``depth + 1`` GRU layers; layer ``i > 0`` adds its input
to its output when ``residual`` (every published model). Pretrained to predict the frame
``n`` steps ahead, so each step sees only the past: token ``t`` depends on frames ``0 … t``.

Layers: echoic's ``depth + 1`` layers are the GRUs' outputs, one per GRU — exactly s3prl's
``hidden_states`` of the published 3-layer models (layer 0 = the first GRU's output; there is no
embedding of width ``D`` before it). s3prl's hooks are fixed to three GRUs (it returns the outputs
of GRUs 0, 1 and the last one whatever the depth); echoic returns every GRU's output.

Each item's sequence is packed (``pack_padded_sequence``, as the reference packs it), so an item
gives the same output in any batch. ``apc`` is the published size (3 × 512 GRUs, 80 bins).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from echoic.encoders.base import EncoderSpec
from echoic.encoders.frame_tokens import FrameEncoder, frame_spec
from echoic.encoders.registry import ENCODERS
from echoic.errors import ConfigError
from echoic.types import Features

__all__ = ["APCConfig", "APCEncoder"]


@dataclass
class APCConfig:
    """Size of an :class:`APCEncoder`: ``depth + 1`` GRUs of ``dim`` units over ``n_bins`` inputs
    (s3prl's ``hidden_size``, ``num_layers - 1``, the feature size; ``residual``)."""

    dim: int = 512
    depth: int = 2
    n_bins: int = 80
    residual: bool = True

    def __post_init__(self) -> None:
        if self.dim < 1 or self.depth < 0 or self.n_bins < 1:
            raise ConfigError(
                f"APCConfig needs dim >= 1, depth >= 0 (GRUs - 1), n_bins >= 1; found {self.dim}, "
                f"{self.depth}, {self.n_bins}."
            )

    def build(self) -> APCEncoder:
        return APCEncoder(self)

    def spec(self) -> EncoderSpec:
        """One token per frame."""
        return frame_spec(self.n_bins, self.dim, self.depth)


class APCEncoder(FrameEncoder[APCConfig]):
    """``Features (B, n_bins, T)`` → ``depth + 1`` layers of ``(B, T, D)``, one per GRU."""

    family = "APC"
    frontend = "kaldi_fbank with cmvn"

    def __init__(self, config: APCConfig) -> None:
        super().__init__()
        self.config = config
        sizes = [config.n_bins] + [config.dim] * config.depth
        self.grus = nn.ModuleList(nn.GRU(size, config.dim, batch_first=True) for size in sizes)

    def _first_layer(self, features: Features) -> torch.Tensor:
        """The first GRU's output ``(B, T, D)`` (layer 0)."""
        lengths = features.lengths.to(features.values.device)
        return self._run(0, self._values(features).transpose(1, 2), lengths)

    def _layers(
        self, tokens: torch.Tensor, padding_mask: torch.Tensor, features: Features
    ) -> list[torch.Tensor]:
        """The other GRUs on the first one's output."""
        lengths = features.lengths.to(tokens.device)
        hidden = [tokens]
        for i in range(1, len(self.grus)):
            out = self._run(i, hidden[-1], lengths)
            hidden.append(out + hidden[-1] if self.config.residual else out)
        return hidden

    def _run(self, i: int, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """GRU ``i`` over each item's own steps ``(B, T, ·)`` → ``(B, T, D)``, zero past them."""
        if x.shape[1] == 0:
            return x.new_zeros(x.shape[0], 0, self.config.dim)
        steps = lengths.clamp(1, x.shape[1]).cpu()
        packed = pack_padded_sequence(x, steps, batch_first=True, enforce_sorted=False)
        out, _ = self.grus[i](packed)
        return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]


ENCODERS.register("apc", APCConfig)
ENCODERS.register("apc_test", lambda: APCConfig(dim=32, depth=2))
