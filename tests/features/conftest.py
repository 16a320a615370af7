"""Shared fixtures for the frontend tests: real clips from ``shared/data`` beside the repo root."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

# shared/data beside the repo root (ECHOIC_DATA overrides, as in tests/conftest.py)
DATA = Path(
    os.environ.get("ECHOIC_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data")
)

# name → (path inside shared/data, sample rate the file decodes at)
CLIPS_16K = {
    "esc50_dog": "esc50/audio/1-100032-A-0.opus",  # has digital silence (log floor)
    "esc50_birds": "esc50/audio/1-100038-A-14.opus",
    "esc50_dc_offset": "esc50/audio/1-77241-A-3.opus",  # quiet frames on a DC offset
    "arabic_backward": "arabic_speech_commands/audio/backward/00000001_NO_01.opus",
    "arabic_cancel": "arabic_speech_commands/audio/cancel/00000002_NO_01.opus",
    "librispeech": "librispeech_speakers/audio/103-1240-0000.opus",
}


def read_clip(relative: str, sample_rate: int) -> np.ndarray:
    """``(S,)`` float32 mono clip read with soundfile; skips the test when the data is absent."""
    path = DATA / relative
    if not path.is_file():
        pytest.skip(
            f"real-audio data not found at {path} (expected the shared/data folder beside the repo)"
        )
    audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    assert rate == sample_rate, f"{path} decodes at {rate} Hz, expected {sample_rate}"
    return np.ascontiguousarray(audio.mean(axis=1))


@pytest.fixture(scope="session")
def clips_16k() -> dict[str, np.ndarray]:
    """Six real 16 kHz clips: 3 ESC-50, 2 Arabic speech commands, 1 LibriSpeech (14 s)."""
    return {name: read_clip(path, 16000) for name, path in CLIPS_16K.items()}


@pytest.fixture(scope="session")
def clip_8k() -> np.ndarray:
    """One real 8 kHz spoken digit from FSDD."""
    return read_clip("fsdd/audio/7_jackson_12.flac", 8000)
