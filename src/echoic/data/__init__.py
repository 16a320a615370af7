"""echoic.data: audio files → float32 arrays → padded :class:`echoic.types.AudioBatch`.

Names are imported lazily (``from echoic.data import load_audio`` works) so that importing a light
submodule such as :mod:`echoic.data.locate` does not pull in soundfile, PyAV, soxr and torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "AUDIO_EXTENSIONS": "echoic.data.audio",
    "AudioInfo": "echoic.data.audio",
    "audio_info": "echoic.data.audio",
    "load_audio": "echoic.data.audio",
    "prepare_audio": "echoic.data.audio",
    "require_min_samples": "echoic.data.audio",
    "resample": "echoic.data.audio",
    "stream_audio": "echoic.data.audio",
    "pad_batch": "echoic.data.batch",
    "unpad": "echoic.data.batch",
    "find_audio": "echoic.data.discover",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'echoic.data' has no attribute {name!r}")
