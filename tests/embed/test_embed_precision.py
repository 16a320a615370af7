"""Reduced precision in the Embedder: close to fp32, its own identity, and ``auto`` decided by a
measurement (cached), never by a guess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from echoic.embed import precision as precision_module
from echoic.embed.embedder import Embedder
from echoic.errors import ConfigError


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))


@pytest.mark.parametrize(("precision", "min_cosine"), [("bf16", 0.999), ("int8", 0.99)])
def test_reduced_precision_is_close_to_fp32(tiny_model, make_tone, precision, min_cosine):
    wave = make_tone(2.0)
    exact = Embedder(tiny_model).embed([wave])[0]
    reduced_embedder = Embedder(tiny_model, precision=precision)
    reduced = reduced_embedder.embed([wave])[0]
    assert reduced.frames.dtype == torch.float32 and reduced.frames.shape == exact.frames.shape
    assert cosine(reduced.frames, exact.frames) >= min_cosine
    assert not torch.equal(reduced.frames, exact.frames)  # it really ran at another precision
    # the caller's model is untouched (a converted copy runs)
    assert next(tiny_model.encoder.parameters()).dtype == torch.float32
    assert reduced_embedder.identity != Embedder(tiny_model).identity


def test_fp32_is_the_default_and_keeps_identities(tiny_model):
    plain = Embedder(tiny_model)
    assert plain.precision == "fp32" and plain.model is tiny_model
    assert Embedder(tiny_model, precision="fp32").identity == plain.identity
    with pytest.raises(ConfigError, match="precision must be one of"):
        Embedder(tiny_model, precision="fp16")


def test_auto_is_fp32_without_native_bf16(tiny_model, monkeypatch):
    monkeypatch.setattr(precision_module, "cpu_flags", lambda: {"avx2", "fma"})
    called = []
    monkeypatch.setattr(precision_module, "measure_bf16_speedup", lambda m: called.append(m) or 9)
    assert Embedder(tiny_model, precision="auto").precision == "fp32"
    assert not called  # no measurement where bf16 is emulated


@pytest.mark.parametrize(("speedup", "chosen"), [(1.6, "bf16"), (1.05, "fp32")])
def test_auto_follows_the_measured_speedup_and_caches_it(
    tiny_model, monkeypatch, tmp_path: Path, speedup: float, chosen: str
):
    monkeypatch.setenv("ECHOIC_CACHE", str(tmp_path))
    monkeypatch.setattr(precision_module, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    calls = []
    monkeypatch.setattr(
        precision_module, "measure_bf16_speedup", lambda m: calls.append(1) or speedup
    )
    assert Embedder(tiny_model, precision="auto").precision == chosen
    assert Embedder(tiny_model, precision="auto").precision == chosen
    assert len(calls) == 1  # measured once, then read from the cache
    [decision] = json.loads((tmp_path / "precision.json").read_text()).values()
    assert decision["precision"] == chosen and decision["bf16_speedup"] == speedup


def test_measured_speedup_is_a_ratio_of_real_runs(tiny_model):
    ratio = precision_module.measure_bf16_speedup(tiny_model, seconds=0.5, batch=1)
    assert 0.001 < ratio < 1000
