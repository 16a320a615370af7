"""Embedding tests run on every encoder family (a spectrogram ViT and a waveform CNN)."""

from __future__ import annotations

import pytest

FAMILIES = ("vit_test", "wav_test")  # as TINY_ENCODERS in tests/conftest.py


@pytest.fixture(params=FAMILIES)
def tiny_model(request: pytest.FixtureRequest, tiny_model_factory):
    """A tiny untrained model of each encoder family (overrides the ViT-only root fixture)."""
    return tiny_model_factory(encoder=request.param)
