"""Golden outputs: each bundled model (``echoic-tiny``, ``echoic-small``) still embeds two real
clips as it did.

The fixtures (``tests/fixtures/golden_<model>.*``, described in ``tests/fixtures/README.md``) were
produced once by ``tests/fixtures/make_golden.py MODEL``; this test recomputes them.

Tolerance. Scene embeddings (means over frames) must agree to 1e-5. Timestamp embeddings are single
frames of the last layer (values up to ~2.6), where float32 matmul kernels of different CPUs
(AVX2 vs AVX-512, other summation orders) already differ: 2.1e-5 measured between the machine that
made the fixture and an AVX-512 machine on the same code (2026-12-06), so they are held to 5e-5.
A real change to an embedding path moves them by orders of magnitude more (a one-sample shift of
the input moves these frames by up to 0.2, the scene embedding by 1.6e-2). Both tolerances are
absolute for values up to 1 and scale with the fixture's largest value above that (echoic-small's
scene embedding, a sum of the mean and the max over frames, reaches 5.4).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import echoic
from echoic.data.audio import load_audio
from echoic.embed.base import NUMERICS_VERSION

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BUNDLED = ("echoic-tiny", "echoic-small")


def _fixture(name: str, suffix: str) -> Path:
    """``tests/fixtures/golden_<model>.<suffix>`` (``-`` in the model name becomes ``_``)."""
    return FIXTURES / f"golden_{name.replace('-', '_')}.{suffix}"


METAS = {name: json.loads(_fixture(name, "json").read_text()) for name in BUNDLED}
TOLERANCE = 1e-5  # scene embeddings
TIMESTAMP_TOLERANCE = 5e-5  # single frames: float32 differences between CPUs reach 2.1e-5
CASES = [
    (name, clip, setting)
    for name, meta in METAS.items()
    for setting in meta["settings"]
    for clip in meta["clips"]
]


def _changed(meta: dict, what: str, detail: str) -> str:
    """The failure message: what changed, by how much, and what to do if it was on purpose."""
    return (
        f"the embeddings of the bundled model {meta['model']} changed: {what} {detail} "
        f"(fixture from commit {meta['commit'][:12]}, numerics version {meta['numerics_version']}). "
        "If this was not on purpose, it is a regression. If it was, bump NUMERICS_VERSION in "
        "src/echoic/embed/base.py (so cached embeddings are recomputed) and regenerate the "
        f"fixture with: {meta['regenerate']}"
    )


def _tolerance(base: float, want: np.ndarray) -> float:
    """``base`` for values up to 1, scaled by the largest magnitude above that."""
    return base * max(1.0, float(np.abs(want).max()))


@functools.cache
def _load(name: str) -> echoic.EchoicModel:
    return echoic.load(name)


@functools.cache
def _golden(name: str) -> dict[str, np.ndarray]:
    return load_file(str(_fixture(name, "safetensors")))


def test_every_bundled_model_has_a_fixture() -> None:
    from echoic.model_format import BUNDLED_DIR

    shipped = {path.name for path in BUNDLED_DIR.iterdir() if (path / "config.json").is_file()}
    assert shipped == set(BUNDLED), (
        f"bundled models {sorted(shipped)} but golden fixtures for {sorted(BUNDLED)}: make one "
        "with tests/fixtures/make_golden.py MODEL and add it to BUNDLED"
    )


@pytest.mark.parametrize("name", BUNDLED)
def test_the_fixture_matches_the_numerics_version(name: str) -> None:
    meta = METAS[name]
    assert meta["model"] == name
    assert meta["numerics_version"] == NUMERICS_VERSION, (
        f"NUMERICS_VERSION is {NUMERICS_VERSION} but the golden fixture of {name} was produced "
        f"at version {meta['numerics_version']}: regenerate it with {meta['regenerate']}"
    )


@pytest.mark.parametrize(("name", "clip", "setting"), CASES, ids=["-".join(c) for c in CASES])
def test_embeddings_match_the_golden_outputs(
    shared_data: Path, name: str, clip: str, setting: str
) -> None:
    meta = METAS[name]
    golden = _golden(name)
    model = _load(name)
    embedder = echoic.Embedder(model, **meta["settings"][setting])
    wave, _ = load_audio(shared_data / meta["clips"][clip], sample_rate=embedder.sample_rate)
    (out,) = embedder.embed([wave])
    key = f"{clip}/{setting}"
    where = f"{clip} ({meta['clips'][clip]}), setting {setting!r}:"

    want_ms = golden[f"{key}/timestamps_ms"]
    got_ms = out.timestamps_ms.numpy()
    assert got_ms.shape == want_ms.shape, _changed(
        meta, where, f"{got_ms.shape[0]} timestamps, expected {want_ms.shape[0]}"
    )
    assert np.array_equal(got_ms, want_ms), _changed(
        meta, where, f"timestamps_ms differ by up to {np.abs(got_ms - want_ms).max():.3g} ms"
    )

    scene = out.scene.numpy()
    want_scene = golden[f"{key}/scene"]
    assert scene.shape == want_scene.shape, _changed(
        meta, where, f"scene shape {scene.shape}, expected {want_scene.shape}"
    )
    diff, tolerance = float(np.abs(scene - want_scene).max()), _tolerance(TOLERANCE, want_scene)
    assert diff <= tolerance, _changed(meta, where, f"scene max |diff| {diff:.3g} > {tolerance:g}")

    rows = golden[f"{key}/timestamp_rows"]
    got = out.timestamps.numpy()[rows]
    want = golden[f"{key}/timestamps"]
    assert got.shape == want.shape, _changed(
        meta, where, f"timestamp embeddings {got.shape} at the kept rows, expected {want.shape}"
    )
    diff, tolerance = float(np.abs(got - want).max()), _tolerance(TIMESTAMP_TOLERANCE, want)
    assert diff <= tolerance, _changed(
        meta, where, f"timestamp embeddings max |diff| {diff:.3g} > {tolerance:g}"
    )
