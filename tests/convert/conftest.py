"""Converter fixtures: the reference packages, tiny random reference models saved in their public
on-disk format, and real clips from ../shared/data.

A reference package that is missing here skips its tests — unless ``ECHOIC_REQUIRE_CONVERTERS=1``
(``make test-converters``, run by ``.ci/run``), where it fails: every converter's parity is checked
in CI. The references are test-only: echoic never imports them at run time.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from convert_helpers import HF_CASES, make_hf_model

CLIPS = {
    "librispeech": ("librispeech_speakers", "audio/103-1240-0000.opus"),
    "esc50": ("esc50", "audio/1-100038-A-14.opus"),
    "body_percussion": ("body_percussion", "audio/bellycenter_l_vl1_rr1.opus"),
}
"""Real clips (speech, environmental sound, a 48 kHz percussion hit), resampled to 16 kHz."""
CLIP_SECONDS = 3.0


PARITY: list[str] = []
"""Measured per-layer maxima, printed at the end of the run (``record_parity``)."""


@pytest.fixture(scope="session")
def record_parity():
    """``record_parity(family, reference, clip, diffs)``: keep one row of the parity table."""

    def record(family: str, reference: str, clip: str, diffs: list[float]) -> None:
        layers = " ".join(f"{d:.1e}" for d in diffs)
        PARITY.append(f"{family:16s} {reference:22s} {clip:16s} {max(diffs):.1e}   {layers}")

    return record


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if PARITY:
        terminalreporter.section("converter parity: max |diff| (overall, then per layer 0..depth)")
        for row in PARITY:
            terminalreporter.write_line(row)


def require_reference(module: str) -> ModuleType:
    """Import a reference package; skip without it, or fail under ECHOIC_REQUIRE_CONVERTERS=1."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        reason = f"converter reference {module!r} not installed ({err}); make test-converters installs it"
        if os.environ.get("ECHOIC_REQUIRE_CONVERTERS") == "1":
            pytest.fail(f"ECHOIC_REQUIRE_CONVERTERS=1 but {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def transformers_module() -> ModuleType:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    transformers = require_reference("transformers")
    transformers.utils.logging.disable_progress_bar()  # save_pretrained's "Writing model shards"
    return transformers


@pytest.fixture(scope="session")
def clips_at(shared_data: Path):
    """``clips_at(rate)`` → name → float32 mono samples at ``rate`` (at most CLIP_SECONDS)."""
    from echoic.data.audio import load_audio

    def load(rate: int) -> dict[str, np.ndarray]:
        out = {}
        for name, (folder, file) in CLIPS.items():
            audio, _ = load_audio(shared_data / folder / file, sample_rate=rate)
            out[name] = np.ascontiguousarray(audio[: int(CLIP_SECONDS * rate)])
        return out

    return load


@pytest.fixture(scope="session")
def clips(clips_at) -> dict[str, np.ndarray]:
    """name → float32 mono 16 kHz samples (at most CLIP_SECONDS)."""
    return clips_at(16000)


@pytest.fixture(scope="session")
def hf_folder(transformers_module, tmp_path_factory):
    """``hf_folder(case)`` → (folder written by save_pretrained, the reference model in eval mode),
    one per case of HF_CASES (built once per session)."""
    built: dict[str, tuple[Path, torch.nn.Module]] = {}

    def get(case: str) -> tuple[Path, torch.nn.Module]:
        if case not in built:
            model = make_hf_model(transformers_module, case)
            folder = tmp_path_factory.mktemp(f"hf-{case}")
            model.save_pretrained(folder)
            built[case] = (folder, model)
        return built[case]

    return get


@pytest.fixture(scope="session")
def converted(hf_folder, tmp_path_factory):
    """``converted(case)`` → the echoic model directory converted from ``hf_folder(case)``."""
    from echoic.convert import convert

    done: dict[str, Path] = {}

    def get(case: str) -> Path:
        if case not in done:
            folder, _ = hf_folder(case)
            done[case] = convert(folder, tmp_path_factory.mktemp(f"echoic-{case}"))
        return done[case]

    return get


__all__ = ["HF_CASES", "require_reference"]
