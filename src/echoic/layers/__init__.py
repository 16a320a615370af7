"""Building blocks of encoders: attention, MLP, transformer block, patch embedding, positions."""

from echoic.layers.attention import Attention, padding_to_attn_mask
from echoic.layers.block import Block, DropPath, LayerScale
from echoic.layers.mlp import MLP
from echoic.layers.patch_embed import (
    PatchEmbed,
    gather_tokens,
    patchify,
    token_grid,
    token_padding_mask,
)
from echoic.layers.positional import sincos_1d, sincos_2d, sincos_grid

__all__ = [
    "MLP",
    "Attention",
    "Block",
    "DropPath",
    "LayerScale",
    "PatchEmbed",
    "gather_tokens",
    "padding_to_attn_mask",
    "patchify",
    "sincos_1d",
    "sincos_2d",
    "sincos_grid",
    "token_grid",
    "token_padding_mask",
]
