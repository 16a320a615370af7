"""Each peer adapter gives the same numbers as calling the peer package directly.

Skipped with one line when the ``peers`` extra is missing, failed under ECHOIC_REQUIRE_PEERS=1.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import soundfile as sf
import torch

import echoic


@pytest.mark.parametrize("capacity", ["tiny", "full"])
def test_torchcrepe_matches_package(zoo_model, clip_factory, capacity):
    model = zoo_model(f"torchcrepe_{capacity}")
    import torchcrepe

    seconds = 1.0 if capacity == "tiny" else 0.5  # full is slow on CPU
    clip = clip_factory(seconds, 16000, 7)
    ours = model.embed([clip_factory(0.2, 16000, 1), clip])[1]
    theirs = torchcrepe.embed(torch.from_numpy(clip)[None], 16000, model.hop, model=capacity)
    assert theirs.shape[:2] == (1, ours.frames.shape[0])
    torch.testing.assert_close(ours.frames, theirs.reshape(ours.frames.shape), atol=1e-5, rtol=0)
    expected_ms = torch.arange(ours.frames.shape[0], dtype=torch.float64) * 1000 * model.hop / 16000
    torch.testing.assert_close(ours.frame_times_ms, expected_ms)


def test_torchcrepe_reads_files_without_torchaudio(zoo_model, clip_factory, tmp_path):
    model = zoo_model("torchcrepe_tiny")
    import torchcrepe

    clip = clip_factory(0.6, 16000, 3)
    path = tmp_path / "clip.wav"
    sf.write(path, clip, 16000, subtype="FLOAT")
    audio, rate = torchcrepe.load.audio(str(path))
    assert rate == 16000 and audio.shape == (1, clip.shape[0])
    np.testing.assert_array_equal(audio[0].numpy(), clip)
    from_file = torchcrepe.embed_from_file(str(path), hop_length=model.hop, model="tiny")
    ours = model.embed([clip])[0].frames
    torch.testing.assert_close(ours, from_file.reshape(ours.shape), atol=1e-5, rtol=0)
    reader = torchcrepe.load.torchaudio
    if (reader.__doc__ or "").startswith("echoic stand-in"):  # it must not leak to others
        assert sys.modules.get("torchaudio") is not reader


def test_openwakeword_matches_package(zoo_model, clip_factory):
    model = zoo_model("openwakeword")
    from openwakeword.utils import AudioFeatures

    from echoic.zoo.peer_openwakeword import to_int16

    clip = clip_factory(2.0, 16000, 4)
    ours = model.embed([clip_factory(1.0, 16000, 2), clip])[1]
    theirs = AudioFeatures(inference_framework="onnx")._get_embeddings(to_int16(clip))
    assert theirs.shape == tuple(ours.frames.shape) == (16, 96)
    np.testing.assert_allclose(ours.frames.numpy(), theirs, atol=1e-5, rtol=0)
    hop = ours.frame_times_ms[1:] - ours.frame_times_ms[:-1]
    torch.testing.assert_close(hop, torch.full_like(hop, 80.0))


def test_resemblyzer_matches_package(zoo_model, clip_factory):
    model = zoo_model("resemblyzer")
    from resemblyzer import VoiceEncoder, normalize_volume

    clip = 0.1 * clip_factory(3.0, 16000, 5)  # quiet: the -30 dBFS gain is exercised
    ours = model.embed([clip_factory(0.4, 16000, 1), clip])[1]
    wav = normalize_volume(clip, -30, increase_only=True)
    embed, partials, slices = VoiceEncoder("cpu", verbose=False).embed_utterance(
        wav, return_partials=True
    )
    np.testing.assert_allclose(ours.scene.numpy(), embed, atol=1e-5, rtol=0)
    np.testing.assert_allclose(ours.frames.numpy(), partials, atol=1e-5, rtol=0)
    # a partial reads mel frames centred at samples s.start … s.stop - 160 (hop 160): its centre
    centres = [(s.start + s.stop - 160) / 2 / 16 for s in slices]
    np.testing.assert_allclose(ours.frame_times_ms.numpy(), centres, atol=1e-6)


def test_aisfx_matches_package(zoo_model, clip_factory, tmp_path):
    model = zoo_model("aisfx")
    from aisfx.inference import load_bestModel, model_get_embedding
    from aisfx.preprocessing import spectrogram_normalize
    from aisfx.spectrogram.spectrogram_librosa import compute_spectrogram

    from echoic.zoo.peer_aisfx import load_aisfx_weights

    clip = clip_factory(4.0, 44100, 6)
    path = tmp_path / "clip.wav"
    sf.write(path, clip, 44100, subtype="FLOAT")
    ours = model.embed([clip_factory(0.5, 44100, 1), clip])[1]
    weights, datasets = load_aisfx_weights()
    net = load_bestModel(weights, datasets, "cpu")
    # the package's librosa path returns bands x time; its blocking expects time x bands
    spec = compute_spectrogram(str(path), 44100.0, 2048, 1024, 96, 0.0, 22050.0).T
    theirs = model_get_embedding(spectrogram_normalize(spec), 0.5, True, net, "cpu")
    assert theirs.shape == tuple(ours.frames.shape) == (2, 512)
    torch.testing.assert_close(ours.frames, theirs, atol=1e-5, rtol=1e-5)


def test_missing_peer_reports_one_line(monkeypatch):
    from echoic.cards import CARDS
    from echoic.zoo.registry import ModelUnavailable, ZooEntry, resolve_model

    entry = ZooEntry(
        name="not_installed_peer",
        kind="peer",
        licence="MIT",
        build=lambda **_: pytest.fail("must not build"),
        requires=("echoic_surely_missing_module",),
        install="pip install --no-deps surely-missing==1.0",
    )
    assert not entry.available() and entry.missing() == ["echoic_surely_missing_module"]
    reason = entry.unavailable_reason()
    assert reason is not None and "\n" not in reason
    assert "echoic_surely_missing_module" in reason and "pip install --no-deps" in reason
    monkeypatch.setitem(CARDS._entries, entry.name, entry)
    with pytest.raises(ModelUnavailable, match="surely-missing"):
        resolve_model("not_installed_peer")
    with pytest.raises(ModelUnavailable, match="surely-missing"):
        echoic.load("not_installed_peer")


def test_require_peers_turns_skips_into_failures(monkeypatch, require_peer):
    from echoic.cards import CARDS
    from echoic.zoo.registry import ZooEntry

    entry = ZooEntry("fake_missing", "peer", "MIT", lambda: None, requires=("echoic_no_such",))
    monkeypatch.setitem(CARDS._entries, entry.name, entry)
    monkeypatch.setenv("ECHOIC_REQUIRE_PEERS", "1")
    with pytest.raises(pytest.fail.Exception, match="ECHOIC_REQUIRE_PEERS"):
        require_peer("fake_missing")
    monkeypatch.delenv("ECHOIC_REQUIRE_PEERS")
    with pytest.raises(pytest.skip.Exception, match="echoic_no_such"):
        require_peer("fake_missing")


def test_resemblyzer_survives_near_silent_clips(zoo_model):
    model = zoo_model("resemblyzer")
    for clip in (np.zeros(8000, np.float32), np.full(8000, 2e-34, np.float32)):
        emb = model.embed([clip])[0]
        assert torch.isfinite(emb.scene).all() and torch.isfinite(emb.timestamps).all()
