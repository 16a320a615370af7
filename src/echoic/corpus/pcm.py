"""The identity of a sound rather than of a file: sha256 of its decoded samples.

Two files hold the same sound when they decode to the same samples at the same rate, whatever
the container (WAV, FLAC, a zip member) or the bytes around them (tags, headers, compression
level). Lossy re-encodings (an OGG of a WAV) decode to other samples and are not caught.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import soundfile as sf

__all__ = ["pcm_sha256"]

BLOCK = 1 << 16


def pcm_sha256(path: Path) -> str:
    """Hex sha256 of ``path``'s decoded samples (32-bit integers as libsndfile scales them, frames × channels) with its
    sample rate and channel count; integer decoding is exact, so WAV and FLAC copies agree (float decoding is not: libsndfile scales 16-bit FLAC and WAV differently)."""
    digest = hashlib.sha256()
    with sf.SoundFile(str(path)) as fh:
        digest.update(f"pcm-v1:{fh.samplerate}:{fh.channels}\n".encode())
        for block in fh.blocks(blocksize=BLOCK, dtype="int32", always_2d=True):
            digest.update(np.ascontiguousarray(block, dtype="<i4").tobytes())
    return digest.hexdigest()
