"""Multichannel audio end to end (file → load_audio → Embedder / extract), and mono unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch

import echoic
from echoic.checkpoint import EchoicModel, ModelConfig
from echoic.data.audio import load_audio
from echoic.data.batch import pad_batch
from echoic.embed.extract import extract
from echoic.types import AudioBatch, Features

SR = 16000
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def stereo_model(seed: int = 0) -> EchoicModel:
    torch.manual_seed(seed)
    config = ModelConfig(
        encoder="vit_test",
        encoder_config={"in_channels": 2},
        frontend="kaldi_fbank",
        frontend_config={"n_mels": 128, "channels": 2},
        name="tiny-stereo",
        untrained=True,
    )
    return EchoicModel(config).eval()


def stereo_clip(seconds: float, seed: int = 0) -> np.ndarray:
    """``(2, S)`` float32: a chirp panned left, noise bursts on the right."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    chirp = 0.3 * np.sin(2 * np.pi * (300 + 400 * t) * t)
    bursts = rng.standard_normal(t.shape[0]) * 0.1 * (np.sin(2 * np.pi * 2 * t) > 0)
    return np.stack([chirp + 0.2 * bursts, 0.3 * chirp + bursts]).astype(np.float32)


def pooled_frames(
    model: EchoicModel, batch: AudioBatch, layer: int = -1
) -> tuple[torch.Tensor, Features]:
    """Frames ``(T, D)`` of a one-item batch, pooled over frequency as the Embedder pools them
    (through the frontend and the encoder explicitly), and the frontend's features."""
    with torch.no_grad():
        features = model.frontend(batch)
        out = model.encoder(features)
    tokens = out.layers[layer]
    n_freq, n_time = out.grid
    grid = tokens.new_zeros(1, n_time, n_freq, tokens.shape[-1])
    grid[torch.arange(1)[:, None], out.time_index, out.freq_index] = tokens
    valid = int((~out.padding_mask[0]).sum()) // n_freq
    return grid.mean(2)[0, :valid], features


def test_a_stereo_file_embeds_end_to_end(tmp_path: Path):
    clip = stereo_clip(3.3)
    path = tmp_path / "stereo.wav"
    sf.write(path, clip.T, SR, subtype="FLOAT")
    wave, rate = load_audio(path, sample_rate=SR, mono=False)
    assert rate == SR and wave.shape == (2, clip.shape[1])
    embedder = echoic.Embedder(stereo_model(), chunk_s=1.28, overlap_s=0.32)
    assert embedder.channels == 2
    (out,) = embedder.embed([wave])
    assert out.scene.shape == (32,) and out.frames.shape[1] == 32
    assert out.frames.shape[0] == embedder.model.geometry.num_time_steps(wave.shape[1])
    assert torch.isfinite(out.timestamps).all() and out.timestamps_ms[-1] <= 3300
    (swapped,) = embedder.embed([wave[::-1].copy()])
    assert float((swapped.scene - out.scene).abs().max()) > 1e-3, "channel order must matter"
    (same,) = embedder.embed([np.stack([wave[0], wave[0]])])
    assert torch.isfinite(same.scene).all() and torch.isfinite(same.timestamps).all()
    # several clips together (different lengths, several chunks) equal one at a time
    short = stereo_clip(0.9, seed=1)
    together = embedder.embed([short, wave])
    torch.testing.assert_close(together[1].scene, out.scene, rtol=0, atol=1e-5)
    torch.testing.assert_close(together[0].scene, embedder.embed([short])[0].scene)


def test_a_stereo_clip_embeds_as_one_direct_forward():
    model = stereo_model(seed=3)
    clip = stereo_clip(1.5, seed=2)
    (out,) = echoic.Embedder(model).embed([torch.from_numpy(clip)])
    direct, features = pooled_frames(model, pad_batch([clip], SR))
    assert features.values.shape[:3] == (1, 2, 128)
    assert torch.equal(out.frames, direct.float())


def test_the_stereo_embedder_names_the_fix_for_mono_input():
    embedder = echoic.Embedder(stereo_model())
    with pytest.raises(ValueError, match=r"2-channel audio.*mono=False"):
        embedder.embed([np.zeros(SR, np.float32)])


def test_a_mono_model_embeds_mono_clips_as_before(tiny_model_factory):
    """The mono path is the explicit ``(B, F, T)`` computation, bit for bit; ``(C, S)`` input is
    mixed down first."""
    model = tiny_model_factory(seed=4)
    clip = stereo_clip(1.5, seed=5)
    mono = clip.mean(axis=0, dtype=np.float32)
    embedder = echoic.Embedder(model)
    assert embedder.channels == 1
    (out,) = embedder.embed([mono])
    direct, features = pooled_frames(model, pad_batch([mono], SR))
    assert features.values.ndim == 3  # mono features stay (B, F, T)
    assert torch.equal(out.frames, direct.float())
    (mixed,) = embedder.embed([clip])
    assert torch.equal(mixed.frames, out.frames)


def test_identities_of_mono_models_are_unchanged():
    """The new channel fields are left out of identities at their defaults, so caches stay valid."""
    meta = json.loads((FIXTURES / "golden_echoic_tiny.json").read_text())
    model = echoic.load(meta["model"])
    for setting, options in meta["settings"].items():
        assert echoic.Embedder(model, **options).identity == meta["identity"][setting]
    assert echoic.Embedder(stereo_model()).identity != echoic.Embedder(model).identity


def test_extract_loads_every_channel_for_a_stereo_model(tmp_path: Path):
    audio = tmp_path / "audio"
    audio.mkdir()
    clip = stereo_clip(2.0, seed=6)
    sf.write(audio / "stereo.wav", clip.T, SR, subtype="FLOAT")
    sf.write(audio / "mono.wav", clip[0], SR, subtype="FLOAT")
    embedder = echoic.Embedder(stereo_model())
    report = extract([audio], tmp_path / "out.parquet", embedder, progress=False)
    assert report.written == 1
    assert [(Path(p).name, cause) for p, cause in report.errors] == [
        ("mono.wav", "1 channel(s), but the model takes 2")
    ]
    assert not report.converted  # nothing was mixed down
    table = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert table[0]["duration_s"] == pytest.approx(2.0)
    wave, _ = load_audio(audio / "stereo.wav", sample_rate=SR, mono=False)
    want = embedder.embed([wave])[0].scene.numpy()
    np.testing.assert_allclose(np.array(table[0]["embedding"]), want, rtol=0, atol=1e-6)
