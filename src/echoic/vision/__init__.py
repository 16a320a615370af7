"""Image towers: rasterised sheet-music snippets → vectors, for audio–sheet retrieval.

``build_image_encoder(name, **config)`` builds a registered image encoder (``sheet_cnn_test``,
``sheet_cnn_tiny``); ``image_batch`` turns grayscale page images into the ``(B, 1, H, W)`` ink
tensor every tower reads. See :mod:`echoic.vision.base` for the contract and docs/sheet_music.md.

Layer: beside ``echoic.encoders`` and ``echoic.text`` (an image tower is a modality encoder, as a
text tower is; it imports nothing above ``echoic.config`` and ``echoic.registry``), so the
two-tower model in ``echoic.objectives.sheet`` and the training and evaluation above it can use it.
"""

from echoic.vision.base import (
    IMAGE_ENCODERS,
    ImageEncoder,
    build_image_encoder,
    describe_image_encoders,
    image_batch,
    image_encoder_config,
)

__all__ = [
    "IMAGE_ENCODERS",
    "ImageEncoder",
    "build_image_encoder",
    "describe_image_encoders",
    "image_batch",
    "image_encoder_config",
]
