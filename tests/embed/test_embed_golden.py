"""Golden outputs: the bundled model ``echoic-tiny`` still embeds two real clips as it did.

The fixture (``tests/fixtures/golden_echoic_tiny.*``, described in ``tests/fixtures/README.md``)
was produced once by ``tests/fixtures/make_golden_echoic_tiny.py``; this test recomputes it.

Tolerance. Scene embeddings (means over frames) must agree to 1e-5. Timestamp embeddings are single
frames of the last layer (values up to ~2.6), where float32 matmul kernels of different CPUs
(AVX2 vs AVX-512, other summation orders) already differ: 2.1e-5 measured between the machine that
made the fixture and an AVX-512 machine on the same code (2026-12-06), so they are held to 5e-5.
A real change to an embedding path moves them by orders of magnitude more (a one-sample shift of
the input moves these frames by up to 0.2, the scene embedding by 1.6e-2).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import echoic
from echoic.data.audio import load_audio
from echoic.embed.base import NUMERICS_VERSION

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
META = json.loads((FIXTURES / "golden_echoic_tiny.json").read_text())
GOLDEN = load_file(str(FIXTURES / "golden_echoic_tiny.safetensors"))
TOLERANCE = 1e-5  # scene embeddings
TIMESTAMP_TOLERANCE = 5e-5  # single frames: float32 differences between CPUs reach 2.1e-5
CASES = [(clip, setting) for setting in META["settings"] for clip in META["clips"]]


def _changed(what: str, detail: str) -> str:
    """The failure message: what changed, by how much, and what to do if it was on purpose."""
    return (
        f"the embeddings of the bundled model {META['model']} changed: {what} {detail} "
        f"(fixture from commit {META['commit'][:12]}, numerics version {META['numerics_version']}). "
        "If this was not on purpose, it is a regression. If it was, bump NUMERICS_VERSION in "
        "src/echoic/embed/base.py (so cached embeddings are recomputed) and regenerate the "
        f"fixture with: {META['regenerate']}"
    )


@pytest.fixture(scope="module")
def model() -> echoic.EchoicModel:
    return echoic.load(META["model"])


def test_the_fixture_matches_the_numerics_version() -> None:
    assert META["numerics_version"] == NUMERICS_VERSION, (
        f"NUMERICS_VERSION is {NUMERICS_VERSION} but the golden fixture was produced at "
        f"version {META['numerics_version']}: regenerate it with {META['regenerate']}"
    )


@pytest.mark.parametrize(("clip", "setting"), CASES, ids=[f"{c}-{s}" for c, s in CASES])
def test_embeddings_match_the_golden_outputs(
    shared_data: Path, model: echoic.EchoicModel, clip: str, setting: str
) -> None:
    embedder = echoic.Embedder(model, **META["settings"][setting])
    wave, _ = load_audio(shared_data / META["clips"][clip], sample_rate=embedder.sample_rate)
    (out,) = embedder.embed([wave])
    key = f"{clip}/{setting}"
    where = f"{clip} ({META['clips'][clip]}), setting {setting!r}:"

    want_ms = GOLDEN[f"{key}/timestamps_ms"]
    got_ms = out.timestamps_ms.numpy()
    assert got_ms.shape == want_ms.shape, _changed(
        where, f"{got_ms.shape[0]} timestamps, expected {want_ms.shape[0]}"
    )
    assert np.array_equal(got_ms, want_ms), _changed(
        where, f"timestamps_ms differ by up to {np.abs(got_ms - want_ms).max():.3g} ms"
    )

    scene = out.scene.numpy()
    want_scene = GOLDEN[f"{key}/scene"]
    assert scene.shape == want_scene.shape, _changed(
        where, f"scene shape {scene.shape}, expected {want_scene.shape}"
    )
    diff = float(np.abs(scene - want_scene).max())
    assert diff <= TOLERANCE, _changed(where, f"scene max |diff| {diff:.3g} > {TOLERANCE:g}")

    rows = GOLDEN[f"{key}/timestamp_rows"]
    got = out.timestamps.numpy()[rows]
    want = GOLDEN[f"{key}/timestamps"]
    assert got.shape == want.shape, _changed(
        where, f"timestamp embeddings {got.shape} at the kept rows, expected {want.shape}"
    )
    diff = float(np.abs(got - want).max())
    assert diff <= TIMESTAMP_TOLERANCE, _changed(
        where, f"timestamp embeddings max |diff| {diff:.3g} > {TIMESTAMP_TOLERANCE:g}"
    )
