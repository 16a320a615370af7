"""Building blocks of encoders: attention, MLP, transformer blocks, patch and waveform embeddings,
positions."""

from echoic.layers.attention import Attention, padding_to_attn_mask
from echoic.layers.block import Block, DropPath, LayerScale
from echoic.layers.conv_feature_encoder import WAV2VEC2_CONV_LAYERS, ConvFeatureEncoder, ConvLayer
from echoic.layers.conv_position import ConvPositionalEmbedding, StackedConvPositionalEmbedding
from echoic.layers.learned_positions import (
    LearnedPositions1d,
    LearnedPositions2d,
    resize_positions_1d,
    resize_positions_2d,
)
from echoic.layers.mlp import MLP
from echoic.layers.patch_embed import (
    PatchEmbed,
    gather_tokens,
    patchify,
    token_grid,
    token_padding_mask,
)
from echoic.layers.positional import sincos_1d, sincos_2d, sincos_grid
from echoic.layers.post_norm import PostNormBlock, deepnorm_coefficients
from echoic.layers.prefix_tokens import PrefixTokens
from echoic.layers.relative_position import (
    GatedRelativePositionBias,
    RelativePositionBias,
    relative_position_bucket,
)

__all__ = [
    "MLP",
    "WAV2VEC2_CONV_LAYERS",
    "Attention",
    "Block",
    "ConvFeatureEncoder",
    "ConvLayer",
    "ConvPositionalEmbedding",
    "DropPath",
    "GatedRelativePositionBias",
    "LayerScale",
    "LearnedPositions1d",
    "LearnedPositions2d",
    "PatchEmbed",
    "PostNormBlock",
    "PrefixTokens",
    "RelativePositionBias",
    "StackedConvPositionalEmbedding",
    "deepnorm_coefficients",
    "gather_tokens",
    "padding_to_attn_mask",
    "patchify",
    "relative_position_bucket",
    "resize_positions_1d",
    "resize_positions_2d",
    "sincos_1d",
    "sincos_2d",
    "sincos_grid",
    "token_grid",
    "token_padding_mask",
]
