"""Encoders: ``Features`` → ``EncoderOutput`` (every layer, padding, token→time map)."""

from echoic.encoders.base import Encoder, EncoderSpec, TokenGeometry, token_geometry
from echoic.encoders.registry import ENCODERS, EncoderConfig, build_encoder, encoder_config
from echoic.encoders.vit import ViTConfig, ViTEncoder

__all__ = [
    "ENCODERS",
    "Encoder",
    "EncoderConfig",
    "EncoderSpec",
    "TokenGeometry",
    "ViTConfig",
    "ViTEncoder",
    "build_encoder",
    "encoder_config",
    "token_geometry",
]
