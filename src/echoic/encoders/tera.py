"""TERA and Mockingjay (Liu et al. 2020, 2021): a BERT-style transformer over log-mel frames.

The s3prl ``mockingjay`` / ``tera`` upstreams (both run ``TransformerModel`` of
``upstream/mockingjay/model.py``) read one feature frame per token — 80-bin log-mel, 10 ms apart,
normalised per utterance (the ``centred_mel`` frontend with ``cmvn``, see the converter) — and:

1. project each frame to the width (``spec_transform``), add a fixed sinusoidal table
   (interleaved: even channels ``sin``, odd ``cos`` of ``t / 10000^(2 ⌊j/2⌋ / D)``), LayerNorm:
   layer 0;
2. ``depth`` BERT blocks, post-LN (every published checkpoint) or pre-LN (``pre_norm``: then each
   layer, layer 0 included, is returned through a LayerNorm of its own, ``output_norms``, as the
   reference returns them; those norms are not on the residual path).

Mockingjay masks frames in pretraining, TERA also frequency bands and magnitudes; the networks are
the same, registered as ``mockingjay`` and ``tera`` (the 3-block base size of the published
``logMelBase`` checkpoints) and ``*_test``. Attention masks padded frames out (s3prl adds -10000
to their scores), so an item gives the same output in any batch. s3prl splits inputs longer than
the pretraining ``sequence_length`` into equal pieces; a converted model recommends Embedder
chunks of that length instead.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import nn

from echoic.encoders.base import EncoderSpec
from echoic.encoders.frame_tokens import FrameEncoder, frame_spec
from echoic.encoders.registry import ENCODERS
from echoic.errors import ConfigError
from echoic.layers import Block, PostNormBlock, padding_to_attn_mask
from echoic.types import Features

__all__ = ["ACTIVATIONS", "TeraConfig", "TeraEncoder", "tera_positions"]

ACTIVATIONS = ("gelu", "relu", "swish")
"""Feed-forward activations of the reference (``gelu`` is the exact, erf one)."""


@functools.cache
def _table(length: int, dim: int) -> torch.Tensor:
    position = torch.arange(length, dtype=torch.float64)[:, None]
    exponent = 2.0 * (torch.arange(dim) // 2).double() / dim
    angles = position / torch.pow(torch.tensor(10000.0, dtype=torch.float64), exponent)[None, :]
    angles[:, 0::2] = angles[:, 0::2].sin()
    angles[:, 1::2] = angles[:, 1::2].cos()
    return angles.float()


def tera_positions(length: int, dim: int) -> torch.Tensor:
    """``(length, dim)`` float32 sinusoids: ``sin`` / ``cos`` of ``t / 10000^(2 ⌊j/2⌋ / dim)`` on
    even / odd channels ``j`` (computed in float64, as the reference's numpy table)."""
    return _table(max(int(length), 0), int(dim))


@dataclass
class TeraConfig:
    """Size and shape of a :class:`TeraEncoder` (s3prl's ``transformer`` config).

    mlp_dim: ``intermediate_size``; norm_eps: ``layer_norm_eps``; pre_norm: ``pre_layer_norm``;
    activation: ``hidden_act`` (one of :data:`ACTIVATIONS`).
    """

    dim: int = 768
    depth: int = 3
    heads: int = 12
    n_bins: int = 80
    mlp_dim: int = 3072
    norm_eps: float = 1e-12
    pre_norm: bool = False
    activation: str = "gelu"

    def __post_init__(self) -> None:
        if self.depth < 1 or self.n_bins < 1 or self.mlp_dim < 1:
            raise ConfigError(
                f"TeraConfig.depth, n_bins and mlp_dim must be >= 1; found {self.depth}, "
                f"{self.n_bins}, {self.mlp_dim}."
            )
        if self.heads < 1 or self.dim % self.heads:
            raise ConfigError(
                f"TeraConfig.dim={self.dim} must split evenly into heads={self.heads}."
            )
        if int(self.dim * (self.mlp_dim / self.dim)) != self.mlp_dim:
            raise ConfigError(
                f"TeraConfig.mlp_dim={self.mlp_dim} is not reachable from dim={self.dim}."
            )
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"TeraConfig.activation must be one of {', '.join(ACTIVATIONS)}; found "
                f"{self.activation!r}."
            )

    def build(self) -> TeraEncoder:
        return TeraEncoder(self)

    def spec(self) -> EncoderSpec:
        """One token per frame."""
        return frame_spec(self.n_bins, self.dim, self.depth)


class TeraEncoder(FrameEncoder[TeraConfig]):
    """``Features (B, n_bins, T)`` → ``depth + 1`` layers of ``(B, T, D)``."""

    family = "TERA"
    frontend = "centred_mel with cmvn"

    def __init__(self, config: TeraConfig) -> None:
        super().__init__()
        self.config = config
        dim, ratio = config.dim, config.mlp_dim / config.dim
        self.proj = nn.Linear(config.n_bins, dim)
        self.input_norm = nn.LayerNorm(dim, eps=config.norm_eps)
        blocks: list[Block | PostNormBlock] = [
            Block(dim, config.heads, mlp_ratio=ratio, norm_eps=config.norm_eps)
            if config.pre_norm
            else PostNormBlock(dim, config.heads, mlp_ratio=ratio, norm_eps=config.norm_eps)
            for _ in range(config.depth)
        ]
        for block in blocks:  # the MLP runs any other activation unfused
            if config.activation != "gelu":
                act = nn.ReLU() if config.activation == "relu" else nn.SiLU()
                block.mlp.add_module("act", act)  # replaces the GELU
        self.blocks = nn.ModuleList(blocks)
        self.output_norms = nn.ModuleList(
            nn.LayerNorm(dim, eps=config.norm_eps)
            for _ in range(config.depth + 1 if config.pre_norm else 0)
        )

    def add_positions(
        self, tokens: torch.Tensor, grid: tuple[int, int], padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(B, N, D)`` tokens plus the first ``N`` rows of the sinusoidal table."""
        table = tera_positions(tokens.shape[1], self.config.dim)
        return tokens + table.to(tokens.device, tokens.dtype)

    def _first_layer(self, features: Features) -> torch.Tensor:
        """Projected frames ``(B, T, D)``, before the input LayerNorm (the tokens; layer 0 is
        their LayerNorm, :meth:`_layers`)."""
        return self.proj(self._values(features).transpose(1, 2))

    def _default_padding(self, tokens: torch.Tensor, features: Features) -> torch.Tensor:
        """All False: given no mask, every token attends to every other."""
        return torch.zeros(tokens.shape[:2], dtype=torch.bool, device=tokens.device)

    def _layers(
        self, tokens: torch.Tensor, padding_mask: torch.Tensor, features: Features
    ) -> list[torch.Tensor]:
        """Input LayerNorm (layer 0), then the blocks."""
        mask = padding_to_attn_mask(padding_mask) if bool(padding_mask.any()) else None
        x = self.input_norm(tokens)
        hidden = [x]
        for block in self.blocks:
            x = block(x, mask)
            hidden.append(x)
        if self.config.pre_norm:
            hidden = [norm(h) for norm, h in zip(self.output_norms, hidden, strict=True)]
        return hidden


def _size(depth: int) -> TeraConfig:
    return TeraConfig(dim=768, depth=depth, heads=12, mlp_dim=3072)


# the published logMelBase checkpoints of both (3 blocks); "Large" ones (12) load from their config
ENCODERS.register("tera", lambda: _size(3))
ENCODERS.register("mockingjay", lambda: _size(3))
ENCODERS.register("tera_test", lambda: TeraConfig(dim=32, depth=2, heads=2, mlp_dim=64))
ENCODERS.register(
    "mockingjay_test", lambda: TeraConfig(dim=32, depth=2, heads=2, mlp_dim=64, pre_norm=True)
)
