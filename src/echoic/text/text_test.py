"""``text_test``: a tiny text transformer over UTF-8 bytes, trained from scratch (tests, smoke recipes).

No vocabulary file: a text is ``[BOS] + its UTF-8 bytes + [EOS]`` (ids: 0 padding, 1 BOS, 2 EOS,
3 + byte), truncated to ``max_length``. Learned positions, pre-LayerNorm blocks
(:class:`echoic.layers.Block`), a final LayerNorm, mean pooling. Every weight trains by default
(``train="full"``) and is saved; the other training modes work as on the pretrained towers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from echoic.errors import ConfigError
from echoic.layers.attention import padding_to_attn_mask
from echoic.layers.block import Block
from echoic.text.base import TextEncoder, TextEncoderConfig, TokenBatch, register

__all__ = ["ByteTokenizer", "TextTestConfig", "TextTestTower"]

PAD, BOS, EOS, OFFSET = 0, 1, 2, 3
VOCAB = OFFSET + 256


class ByteTokenizer:
    """``list[str] → TokenBatch`` over UTF-8 bytes (module docstring), padded to the longest."""

    vocab_size = VOCAB

    def __init__(self, max_length: int) -> None:
        self.max_length = max_length

    def __call__(self, texts: Sequence[str]) -> TokenBatch:
        rows = [
            [BOS, *(OFFSET + b for b in text.encode("utf-8")[: self.max_length - 2]), EOS]
            for text in texts
        ]
        width = max((len(r) for r in rows), default=2)
        ids = torch.full((len(rows), width), PAD, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
        return TokenBatch(ids, ids == PAD)


@dataclass
class TextTestConfig(TextEncoderConfig):
    """A tiny tower: ``width`` wide, ``depth`` blocks of ``heads`` heads, trained from scratch."""

    train: str = "full"
    max_length: int = 64
    width: int = 64
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.width < 1 or self.depth < 1 or self.heads < 1 or self.width % self.heads:
            raise ConfigError(
                f"text_test needs width, depth, heads >= 1 with heads dividing width; found "
                f"width={self.width}, depth={self.depth}, heads={self.heads}."
            )


@register
class TextTestTower(TextEncoder):
    """Byte-level transformer (module docstring)."""

    name = "text_test"
    config_class = TextTestConfig
    licence = "Apache-2.0"
    description = "tiny byte-level transformer trained from scratch (tests, smoke recipes)"
    projection_paths: ClassVar[dict[str, str]] = {
        "query": "attn.qkv",  # one fused q|k|v projection: any of the three adapts all three
        "key": "attn.qkv",
        "value": "attn.qkv",
        "output": "attn.proj",
    }

    def __init__(self, config: TextTestConfig) -> None:
        super().__init__(config)
        self.config: TextTestConfig = config
        self.tokenizer = ByteTokenizer(config.max_length)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.token_embedding = nn.Embedding(VOCAB, config.width, padding_idx=PAD)
            nn.init.normal_(self.token_embedding.weight, std=0.02)
            self.positions = nn.Parameter(torch.zeros(1, config.max_length, config.width))
            nn.init.trunc_normal_(self.positions, std=0.02)
            self.blocks = nn.ModuleList(
                Block(config.width, config.heads, config.mlp_ratio) for _ in range(config.depth)
            )
            self.norm = nn.LayerNorm(config.width)
        self.finish_init()

    @classmethod
    def dim_of(cls, config: TextEncoderConfig) -> int:
        assert isinstance(config, TextTestConfig)
        return config.width

    def encode_tokens(self, tokens: TokenBatch) -> torch.Tensor:
        length = tokens.input_ids.shape[1]
        x = self.token_embedding(tokens.input_ids) + self.positions[:, :length]
        mask = padding_to_attn_mask(tokens.padding_mask)
        for block in self.blocks:
            x = block(x, mask)
        out: torch.Tensor = self.norm(x)
        return out

    def transformer_layers(self) -> nn.ModuleList:
        return self.blocks
