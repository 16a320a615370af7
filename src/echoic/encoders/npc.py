"""NPC, non-autoregressive predictive coding (Liu et al. 2021): convolution blocks with masked
convolutions that never see the frames they predict.

The s3prl ``npc`` upstream (``upstream/npc/npc.py``) reads one feature frame per step — 80-bin
Kaldi fbank, 10 ms apart, normalised per utterance (``kaldi_fbank`` with a Hamming window and
``cmvn``) — through ``blocks`` convolution blocks, each ``conv(k=3) → BatchNorm → act →
conv(k=1) → BatchNorm (→ + input, blocks > 0 with residual) → act``. After block ``i`` a masked
convolution (``kernel_size`` taps with the centre ``mask_size + 2 (i + 1)`` zeroed, then tanh)
reads its output; their sum is the representation (with ``cross_layer=False`` only the last block
has one).

Layers: echoic's layers are s3prl's ``hidden_states`` in their order (its hooks record them as
the model runs): block 0, masked conv 0, block 1, masked conv 1, …, the last masked conv, then the
sum — ``2 · blocks + 1`` layers (``depth = 2 · blocks``); without cross-layer masked convolutions
the blocks, the last masked conv and the sum (``depth = blocks + 1``). Layer 0 is block 0's output.

Every convolution pads with zeros, and padded frames are zeroed before each one, so an item
gives in a batch what it gives alone (the reference convolves a zero-padded batch, where a
short item's last frames see the neighbouring padding's activations). BatchNorms are used with
their running statistics. ``npc`` is the published size (4 blocks of 512, kernel 15, mask 5).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from echoic.encoders.base import EncoderSpec
from echoic.encoders.frame_tokens import FrameEncoder, frame_spec
from echoic.encoders.registry import ENCODERS
from echoic.errors import ConfigError
from echoic.types import Features

__all__ = ["ConvBlock", "MaskedConv", "NPCConfig", "NPCEncoder", "masked_taps"]


@dataclass
class NPCConfig:
    """Shape of an :class:`NPCEncoder` (s3prl's ``hidden_size``, ``n_blocks``, ``kernel_size``,
    ``mask_size``, ``residual``, ``batch_norm``, ``activate``, ``not disable_cross_layer``)."""

    dim: int = 512
    blocks: int = 4
    n_bins: int = 80
    kernel_size: int = 15
    mask_size: int = 5
    residual: bool = True
    batch_norm: bool = True
    activation: str = "relu"
    cross_layer: bool = True

    def __post_init__(self) -> None:
        if self.dim < 1 or self.blocks < 1 or self.n_bins < 1:
            raise ConfigError(
                f"NPCConfig needs dim, blocks, n_bins >= 1; found {self.dim}, {self.blocks}, "
                f"{self.n_bins}."
            )
        if self.kernel_size % 2 == 0 or self.mask_size % 2 == 0:
            raise ConfigError(
                f"NPCConfig.kernel_size and mask_size must be odd; found {self.kernel_size}, "
                f"{self.mask_size}."
            )
        if self.mask_size + 2 * self.blocks >= self.kernel_size:
            raise ConfigError(
                f"NPCConfig: the last block's mask ({self.mask_size + 2 * self.blocks} taps) must "
                f"be narrower than kernel_size={self.kernel_size}."
            )
        if self.activation not in ("relu", "tanh"):
            raise ConfigError(
                f"NPCConfig.activation must be relu or tanh; found {self.activation!r}."
            )

    @property
    def depth(self) -> int:
        return 2 * self.blocks if self.cross_layer else self.blocks + 1

    def build(self) -> NPCEncoder:
        return NPCEncoder(self)

    def spec(self) -> EncoderSpec:
        """One token per frame."""
        return frame_spec(self.n_bins, self.dim, self.depth)


class ConvBlock(nn.Module):
    """``act(bn2(linear(act(bn1(conv(x))))) [+ x])``: ``(B, C, T)`` → ``(B, D, T)``."""

    def __init__(self, channels: int, dim: int, config: NPCConfig, residual: bool) -> None:
        super().__init__()
        self.residual = residual
        self.conv = nn.Conv1d(channels, dim, kernel_size=3, padding=1)
        self.linear = nn.Conv1d(dim, dim, kernel_size=1)
        self.bn1: nn.Module = nn.BatchNorm1d(dim) if config.batch_norm else nn.Identity()
        self.bn2: nn.Module = nn.BatchNorm1d(dim) if config.batch_norm else nn.Identity()
        self.act: nn.Module = nn.ReLU() if config.activation == "relu" else nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.linear(self.act(self.bn1(self.conv(x)))))
        return self.act(out + x if self.residual else out)


def masked_taps(kernel_size: int, mask: int) -> torch.Tensor:
    """``(1, 1, kernel_size)``: ones, with the centre ``mask`` taps 0 (NPC's ``conv_mask``)."""
    taps = torch.ones(1, 1, kernel_size)
    head = (kernel_size - mask) // 2
    taps[..., head : head + mask] = 0.0
    return taps


class MaskedConv(nn.Module):
    """``tanh(conv(x))`` with the centre ``mask`` taps of the kernel zeroed: ``(B, D, T)`` →
    ``(B, T, D)``. The mask is a fixed buffer (not saved), so fine-tuning keeps it."""

    def __init__(self, dim: int, kernel_size: int, mask: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, kernel_size=kernel_size, padding=(kernel_size - 1) // 2)
        self.taps: torch.Tensor
        self.register_buffer("taps", masked_taps(kernel_size, mask), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.taps * self.conv.weight
        out = F.conv1d(x, weight, self.conv.bias, padding=self.conv.padding)
        return torch.tanh(out.transpose(1, 2))


class NPCEncoder(FrameEncoder[NPCConfig]):
    """``Features (B, n_bins, T)`` → ``depth + 1`` layers of ``(B, T, D)`` (see the module
    docstring for their order)."""

    family = "NPC"
    frontend = "kaldi_fbank with cmvn"

    def __init__(self, config: NPCConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.dim
        self.blocks = nn.ModuleList(
            ConvBlock(config.n_bins if i == 0 else dim, dim, config, config.residual and i > 0)
            for i in range(config.blocks)
        )
        first = 0 if config.cross_layer else config.blocks - 1
        self.masked = nn.ModuleList(
            MaskedConv(dim, config.kernel_size, config.mask_size + 2 * (i + 1))
            for i in range(first, config.blocks)
        )

    def _first_layer(self, features: Features) -> torch.Tensor:
        """Block 0's output ``(B, T, D)`` (layer 0), zero on padded frames."""
        return self._valid(self.blocks[0](self._values(features)), features).transpose(1, 2)

    def _layers(
        self, tokens: torch.Tensor, padding_mask: torch.Tensor, features: Features
    ) -> list[torch.Tensor]:
        """Masked convolutions and the other blocks on block 0's output."""
        x = self._valid(tokens.transpose(1, 2), features)
        hidden = [tokens]
        total: torch.Tensor | None = None
        first = 0 if self.config.cross_layer else self.config.blocks - 1
        for i in range(self.config.blocks):
            if i > 0:
                x = self._valid(self.blocks[i](x), features)
                hidden.append(x.transpose(1, 2))
            if i >= first:
                masked = self.masked[i - first](x)
                total = masked if total is None else total + masked
                hidden.append(masked)
        assert total is not None
        hidden.append(total)
        return hidden

    def _valid(self, x: torch.Tensor, features: Features) -> torch.Tensor:
        """``(B, D, T)`` with frames past each item's length set to 0."""
        frames = torch.arange(x.shape[-1], device=x.device)
        padded = frames[None, :] >= features.lengths.to(x.device)[:, None]
        return x.masked_fill(padded[:, None, :], 0.0)


ENCODERS.register("npc", NPCConfig)
ENCODERS.register("npc_test", lambda: NPCConfig(dim=32, blocks=2, kernel_size=9, mask_size=3))
