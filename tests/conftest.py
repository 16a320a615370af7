"""Shared fixtures: real-data location, tiny models, synthetic audio."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from optional_extras import sheet_missing, spatial_missing

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)  # tests run in parallel workers on 2 cores

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ECHOIC_DATA", REPO.parent / "shared" / "data"))
DATA_SKIP = "real-audio data not found"
"""Every test that needs ../shared/data skips with a reason containing this phrase when it is
absent; under ``ECHOIC_REQUIRE_DATA=1`` (CI: ``.ci/run``) such a skip is a failure instead."""


@pytest.fixture(scope="module")
def spatial_extra() -> None:
    """Skip (fail under ``ECHOIC_REQUIRE_SPATIAL=1``) when the spatial extra is missing."""
    why = spatial_missing()
    if why:
        message = f"the spatial extra is missing: {why} (pip install 'echoic[spatial]')"
        if os.environ.get("ECHOIC_REQUIRE_SPATIAL") == "1":
            pytest.fail(message + "; ECHOIC_REQUIRE_SPATIAL=1 makes this a failure")
        pytest.skip(message)


@pytest.fixture(scope="module")
def sheet_extra() -> None:
    """Skip (fail under ``ECHOIC_REQUIRE_SHEET=1``) when the sheet extra or fluidsynth is missing."""
    why = sheet_missing()
    if why:
        message = f"the sheet extra is unusable: {why} (pip install 'echoic[sheet]')"
        if os.environ.get("ECHOIC_REQUIRE_SHEET") == "1":
            pytest.fail(message + "; ECHOIC_REQUIRE_SHEET=1 makes this a failure")
        pytest.skip(message)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("ECHOIC_REQUIRE_DATA") == "1":
        reason = str(report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr)
        if DATA_SKIP in reason:
            report.outcome = "failed"
            report.longrepr = (
                f"ECHOIC_REQUIRE_DATA=1, so a test may not skip for missing data: {reason}. "
                "Put the real-audio data at ../shared/data or set ECHOIC_DATA."
            )


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"real-audio data not found at {SHARED_DATA} (set ECHOIC_DATA)")
    return SHARED_DATA


TINY_ENCODERS = ("vit_test", "wav_test")
"""One tiny size per encoder family: tests that hold for every encoder run on each."""


def tiny_model_config(seed: int = 0, encoder: str = "vit_test", **frontend: object):
    """A tiny untrained model: a spectrogram encoder on Kaldi fbank, a waveform encoder on the
    ``waveform`` frontend (chosen from the encoder's declared input, never its name)."""
    from echoic.checkpoint import ModelConfig
    from echoic.encoders import encoder_config

    spec = encoder_config(encoder).spec()
    if spec.input == "waveform":
        name, config = "waveform", dict(frontend)
    else:
        name, config = "kaldi_fbank", {"n_mels": spec.n_bins, **frontend}
    return ModelConfig(
        encoder=encoder,
        frontend=name,
        frontend_config=config,
        name="tiny-test" if encoder == "vit_test" else f"tiny-{encoder}",
        untrained=True,
        provenance={"seed": seed},
    )


def make_tiny_model(seed: int = 0, encoder: str = "vit_test"):
    from echoic.checkpoint import EchoicModel

    torch.manual_seed(seed)
    return EchoicModel(tiny_model_config(seed, encoder)).eval()


@pytest.fixture
def tiny_model():
    return make_tiny_model()


def tone(seconds: float, sr: int = 16000, freq: float = 440.0, seed: int = 0) -> np.ndarray:
    """A tone plus a little noise, float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.5 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(t.shape)
    return x.astype(np.float32)


@pytest.fixture(scope="session")
def tiny_model_factory():
    """``factory(seed=0, encoder="vit_test")`` → a fresh tiny model (see ``TINY_ENCODERS``)."""
    return make_tiny_model


@pytest.fixture(scope="session")
def make_tone():
    """``make_tone(seconds, sr=16000, freq=440.0, seed=0)`` → float32 tone + noise."""
    return tone
