"""Registered sizes, config overrides, parameter counts, and the embedding benchmark's smoke mode."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from echoic.encoders import ENCODERS, ViTConfig, ViTEncoder, build_encoder, encoder_config
from echoic.encoders.wav import WavConfig
from echoic.errors import ConfigError
from echoic.registry import RegistryError

REPO = Path(__file__).resolve().parents[2]

# Published parameter counts of the headless timm/DeiT ViT-{Ti,S,B}/16 at 224 px (3-channel input,
# learned 197-position table). Ours differ only in the embedding: fixed sin-cos positions (no
# parameters) and a 1-channel 16×16 patch projection (256 inputs instead of 768).
KNOWN_VIT = {"vit_tiny": 5_524_416, "vit_small": 21_665_664, "vit_base": 85_798_656}


def test_registered_sizes():
    assert {"vit_test", "vit_tiny", "vit_small", "vit_base"} <= set(ENCODERS.names())
    for name, (dim, depth, heads) in {
        "vit_tiny": (192, 12, 3),
        "vit_small": (384, 12, 6),
        "vit_base": (768, 12, 12),
    }.items():
        config = encoder_config(name)
        assert isinstance(config, ViTConfig)
        assert (config.dim, config.depth, config.heads) == (dim, depth, heads)
        assert config.patch == (16, 16) and config.n_bins == 128


@pytest.mark.parametrize("name", sorted(KNOWN_VIT))
def test_parameter_counts_match_known_vit_sizes(name):
    with torch.device("meta"):  # count without allocating 85M floats
        enc = build_encoder(name)
    dim = enc.dim
    known = KNOWN_VIT[name]
    learned_positions = 197 * dim
    rgb_patch = 3 * 16 * 16 * dim + dim
    mono_patch = 16 * 16 * dim + dim
    expected = known - learned_positions - rgb_patch + mono_patch
    assert sum(p.numel() for p in enc.parameters()) == expected
    assert abs(expected - known) / known < 0.03


def test_waveform_sizes_follow_vit_and_wav2vec2_base():
    """``wav_small`` is vit_small's transformer, ``wav_base`` wav2vec 2.0 / data2vec 2.0 base's, both
    on wav2vec 2.0's 512-channel seven-layer conv front end (20-ms frames, 25-ms field)."""
    for name, (dim, depth, heads, size) in {
        "wav_small": (384, 12, 6, 26_879_104),
        "wav_base": (768, 12, 12, 94_377_088),
    }.items():
        config = encoder_config(name, cls_token=False)
        assert isinstance(config, WavConfig)
        assert (config.dim, config.depth, config.heads) == (dim, depth, heads)
        assert config.mlp_ratio == 4.0  # FFN 1536 / 3072
        assert [layer[0] for layer in config.conv_layers] == [512] * 7
        assert (config.stride, config.receptive) == (320, 400)
        assert (config.pos_conv_kernel, config.pos_conv_groups) == (128, 16)
        with torch.device("meta"):
            enc = build_encoder(name, cls_token=False)
        assert sum(p.numel() for p in enc.parameters()) == size
    vit, small = encoder_config("vit_small"), encoder_config("wav_small")
    assert isinstance(vit, ViTConfig) and isinstance(small, WavConfig)
    assert (small.dim, small.depth, small.heads) == (vit.dim, vit.depth, vit.heads)


def test_vit_test_is_tiny_and_fast():
    enc = build_encoder("vit_test")
    assert isinstance(enc, ViTEncoder)
    assert sum(p.numel() for p in enc.parameters()) < 100_000


def test_overrides_are_validated_and_coerced():
    enc = build_encoder("vit_test", patch=[16, 8], cls_token=False)
    assert enc.patch == (16, 8) and enc.config.cls_token is False
    with pytest.raises(ConfigError, match="cls_token"):
        build_encoder("vit_test", cls_tokn=False)
    with pytest.raises(ConfigError, match="heads"):
        build_encoder("vit_test", heads=5)
    with pytest.raises(RegistryError, match="vit_base"):
        build_encoder("vit_bse")


def test_wrong_bin_count_is_explained():
    enc = build_encoder("vit_test")
    from echoic.types import Features

    feats = Features(torch.zeros(1, 64, 32), torch.tensor([32]), 0.01, 0.0)
    with pytest.raises(ConfigError, match="n_bins=64"):
        enc(feats)


def test_benchmark_quick_mode_runs(monkeypatch):
    path = REPO / "benchmarks" / "bench_embed.py"
    spec = importlib.util.spec_from_file_location("bench_embed", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    results = module.main(["--quick"])
    for key in (
        "peak_mkl_mm_gflops",
        "echoic_audio_s_per_s",
        "echoic_gflops",
        "transformers_ast_audio_s_per_s",
        "echoic_vs_ast",
    ):
        assert results[key] > 0, key
