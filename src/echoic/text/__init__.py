"""Text towers: captions and class prompts → vectors, for audio–text objectives and zero-shot.

``build_text_encoder(name, **config)`` builds a registered tower (``minilm``, ``e5_small``,
``text_test``); ``save_text_tower`` / ``load_text_tower`` write and read one beside an audio model.
See :class:`echoic.text.base.TextEncoder` for the contract and ``docs/text.md``.
"""

from echoic.text.base import (
    TEXT_ENCODERS,
    TextEncoder,
    TextEncoderConfig,
    TextTowerUnavailable,
    TokenBatch,
    build_text_encoder,
    describe_text_encoders,
    text_encoder_config,
)
from echoic.text.store import load_text_tower, save_text_tower, text_tower_record

__all__ = [
    "TEXT_ENCODERS",
    "TextEncoder",
    "TextEncoderConfig",
    "TextTowerUnavailable",
    "TokenBatch",
    "build_text_encoder",
    "describe_text_encoders",
    "load_text_tower",
    "save_text_tower",
    "text_encoder_config",
    "text_tower_record",
]
