"""The Encoder protocol, checked on every registered encoder (``echoic.encoders.base``).

Each entry of ``ENCODERS`` is built with the frontend its spec asks for and run on a batch of two
items of different lengths. What the spec declares without running (width, depth, grid, token
count, timing, padding, channels) must be what the module returns; the token-level entry points
must compose to the plain forward; and an item's outputs must not depend on its batch.
"""

from __future__ import annotations

import pytest
import torch

from echoic.checkpoint import EchoicModel, ModelConfig
from echoic.encoders import ENCODERS, Encoder, EncoderSpec, encoder_config
from echoic.encoders.base import time_token_padding
from echoic.types import AudioBatch

SR = 16000
NAMES = ENCODERS.names()
LENGTHS = (SR * 13 // 10, SR * 7 // 10)  # 1.3 s and 0.7 s


def test_both_families_are_registered() -> None:
    specs = {name: encoder_config(name).spec() for name in NAMES}
    assert {"vit_test", "vit_tiny", "wav_test", "wav_tiny"} <= set(NAMES)
    assert {s.input for s in specs.values()} == {"features", "waveform"}
    assert {s.layout for s in specs.values()} == {"patches", "frames"}


def model_for(name: str) -> EchoicModel:
    """The encoder behind the frontend its spec asks for (chosen by spec, not by name)."""
    spec = encoder_config(name).spec()
    if spec.input == "waveform":
        frontend, config = "waveform", {}
    else:
        frontend, config = "kaldi_fbank", {"n_mels": spec.n_bins}
    torch.manual_seed(0)
    return EchoicModel(ModelConfig(encoder=name, frontend=frontend, frontend_config=config)).eval()


@pytest.fixture(scope="module", params=NAMES)
def case(request: pytest.FixtureRequest) -> tuple[str, EchoicModel, AudioBatch]:
    model = model_for(request.param)
    g = torch.Generator().manual_seed(1)
    wave = torch.zeros(2, max(LENGTHS))
    for i, n in enumerate(LENGTHS):
        wave[i, :n] = torch.randn(n, generator=g) * 0.1
    return request.param, model, AudioBatch(wave, torch.tensor(LENGTHS), SR)


def test_spec_is_declared_without_building_and_matches_the_module(case) -> None:
    name, model, _ = case
    spec = encoder_config(name).spec()
    assert isinstance(spec, EncoderSpec)
    assert model.encoder.spec == spec
    assert isinstance(
        model.encoder, Encoder
    )  # the base class whose abstract methods are the protocol


@torch.no_grad()
def test_outputs_match_the_declared_geometry(case) -> None:
    name, model, audio = case
    spec, geometry = model.encoder.spec, model.geometry
    features = model.frontend(audio)
    out = model.encoder(features)
    assert len(out.layers) == spec.n_layers
    assert all(layer.shape[-1] == spec.width for layer in out.layers)
    assert (out.cls_layers is not None) == (spec.cls_tokens > 0)
    assert out.grid == spec.grid(features.n_frames)
    n_freq, n_time = out.grid
    assert n_freq == spec.freq_tokens and out.last.shape[1] == n_freq * n_time
    for i, n in enumerate(LENGTHS):
        valid = int((~out.padding_mask[i]).sum())
        assert valid == geometry.num_time_steps(n) * n_freq, f"{name}: item {i}"
    # every token's time, from the geometry alone, equals the one the encoder returns
    expected_s = geometry.centre_s(out.time_index)
    torch.testing.assert_close(out.token_times_s.double(), expected_s, atol=1e-6, rtol=0)
    assert out.patch_hop_s == pytest.approx(geometry.hop_s)
    # padding is the declared per-time-step padding, spread over the frequency tokens
    per_time = time_token_padding(spec, features.lengths, n_time)
    rows = torch.arange(2)[:, None]
    torch.testing.assert_close(out.padding_mask, per_time[rows, out.time_index])
    assert torch.equal(model.encoder.token_padding(features), out.padding_mask)
    targets = model.encoder.token_targets(features)
    assert targets.shape == (2, n_freq * n_time, spec.token_input_size)


@torch.no_grad()
def test_token_level_entry_points_compose_to_forward(case) -> None:
    _, model, audio = case
    enc = model.encoder
    features = model.frontend(audio)
    direct = enc(features)
    tokens, pad, grid = enc.embed_tokens(features, add_positions=False)
    tokens = enc.add_positions(tokens, grid, pad)
    composed = enc.forward_tokens(tokens, pad, features)
    valid = ~direct.padding_mask
    for a, b in zip(direct.layers, composed.layers, strict=True):
        torch.testing.assert_close(a[valid], b[valid], atol=1e-5, rtol=0)


@torch.no_grad()
def test_kept_tokens_come_back_in_order_with_their_coordinates(case) -> None:
    _, model, audio = case
    enc = model.encoder
    if not enc.spec.accepts_keep_idx:
        pytest.skip("this encoder declares that it takes no kept-token indices")
    features = model.frontend(audio)
    n_tokens = enc.grid(features.n_frames)[0] * enc.grid(features.n_frames)[1]
    keep = torch.stack([torch.randperm(n_tokens)[: n_tokens // 3] for _ in range(2)])
    out = enc(features, keep_idx=keep)
    full = enc(features)
    assert out.last.shape == (2, keep.shape[1], enc.spec.width)
    assert torch.equal(out.token_index, keep)
    assert torch.equal(out.time_index, torch.gather(full.time_index, 1, keep))
    assert torch.equal(out.padding_mask, torch.gather(full.padding_mask, 1, keep))


@torch.no_grad()
def test_an_item_does_not_depend_on_its_batch(case) -> None:
    _, model, audio = case
    both = model(audio)
    n = LENGTHS[1]
    alone = model(AudioBatch(audio.waveform[1:, :n], torch.tensor([n]), SR))
    valid = int((~alone.padding_mask[0]).sum())
    assert valid == int((~both.padding_mask[1]).sum())
    # valid tokens in their order (a prefix only for time-major encoders; freq-major ones have
    # each frequency row's valid steps first)
    mine, in_batch = ~alone.padding_mask[0], ~both.padding_mask[1]
    assert torch.equal(alone.time_index[0][mine], both.time_index[1][in_batch])
    assert torch.equal(alone.freq_index[0][mine], both.freq_index[1][in_batch])
    torch.testing.assert_close(alone.last[0][mine], both.last[1][in_batch], atol=1e-4, rtol=0)
