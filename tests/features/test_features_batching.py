"""Batch invariance, padding and frame counts of every frontend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from echoic.features.base import build_frontend
from echoic.types import AudioBatch

FRONTENDS = [
    pytest.param("kaldi_fbank", {}, id="kaldi"),
    pytest.param(
        "kaldi_fbank",
        {"window": "hamming", "use_energy": True, "waveform_scale": 32768.0, "mean": 15.4},
        id="kaldi-energy",
    ),
    pytest.param("logmel", {}, id="logmel"),
    pytest.param("logmel", {"n_fft": 512, "mel_scale": "slaney", "std": 4.0}, id="logmel-512"),
]


def pad_batch(clips: list[np.ndarray], fill: float = 0.0, extra: int = 0) -> AudioBatch:
    """Pad ``clips`` to one ``(B, S)`` tensor with ``fill`` (plus ``extra`` samples of it)."""
    longest = max(len(c) for c in clips) + extra
    waveform = torch.full((len(clips), longest), fill, dtype=torch.float32)
    for i, clip in enumerate(clips):
        waveform[i, : len(clip)] = torch.from_numpy(clip)
    return AudioBatch(waveform, torch.tensor([len(c) for c in clips]), 16000)


def three_clips(clips_16k: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Three real clips of different lengths (not multiples of the hop)."""
    return [
        clips_16k["librispeech"][:37_777],
        clips_16k["esc50_birds"][:16_123],
        clips_16k["arabic_cancel"][:9_001],
    ]


@pytest.mark.parametrize(("name", "config"), FRONTENDS)
def test_batched_equals_one_at_a_time(
    clips_16k: dict[str, np.ndarray], name: str, config: dict[str, Any]
) -> None:
    frontend = build_frontend(name, config)
    clips = three_clips(clips_16k)
    # non-zero padding must not leak into any item's frames either
    batched = frontend(pad_batch(clips, fill=0.5, extra=1234))
    expected_lengths = [1 + (len(c) - 400) // 160 for c in clips]
    assert batched.lengths.tolist() == expected_lengths
    assert batched.lengths.dtype == torch.int64
    assert batched.values.dtype == torch.float32
    assert batched.values.shape == (3, frontend.n_bins, max(expected_lengths))
    for i, clip in enumerate(clips):
        alone = frontend(pad_batch([clip]))
        n = expected_lengths[i]
        assert alone.values.shape[-1] == n
        torch.testing.assert_close(batched.values[i, :, :n], alone.values[0], rtol=0, atol=1e-5)
        assert torch.all(batched.values[i, :, n:] == 0.0), "values beyond the length must be 0"
    assert torch.equal(batched.padding_mask()[:, -1], torch.tensor([False, True, True]))


@pytest.mark.parametrize(("name", "config"), FRONTENDS)
def test_frame_counts_and_short_clips(name: str, config: dict[str, Any]) -> None:
    frontend = build_frontend(name, config)
    assert frontend.min_samples == 400
    for n, frames in [(0, 0), (399, 0), (400, 1), (559, 1), (560, 2), (16000, 98)]:
        assert frontend.num_frames(n) == frames
        assert frontend.num_frames(torch.tensor([n])).tolist() == [frames]
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (399, 400, 561)]
    features = frontend(pad_batch(clips))
    assert features.lengths.tolist() == [0, 1, 2]
    assert torch.all(features.values[0] == 0.0)
    assert torch.all(features.values[1, :, 1:] == 0.0)
    empty = frontend(pad_batch([clips[0][:100], clips[0]]))
    assert empty.values.shape == (2, frontend.n_bins, 0)
    assert empty.lengths.tolist() == [0, 0]


def test_mono_channel_axis_is_accepted(clips_16k: dict[str, np.ndarray]) -> None:
    frontend = build_frontend("kaldi_fbank", {"n_mels": 40})
    flat = pad_batch(three_clips(clips_16k))
    with_channel = AudioBatch(flat.waveform[:, None, :], flat.lengths, 16000)
    assert torch.equal(frontend(flat).values, frontend(with_channel).values)


def test_normalisation_uses_config_mean_and_std(clips_16k: dict[str, np.ndarray]) -> None:
    batch = pad_batch(three_clips(clips_16k))
    raw = build_frontend("kaldi_fbank", {"n_mels": 64})(batch)
    normalised = build_frontend("kaldi_fbank", {"n_mels": 64, "mean": -4.0, "std": 9.0})(batch)
    n = int(raw.lengths[0])
    torch.testing.assert_close(normalised.values[0, :, :n], (raw.values[0, :, :n] + 4.0) / 9.0)
    # padding stays exactly 0 after normalisation (not -mean / std)
    assert torch.all(normalised.values[2, :, int(raw.lengths[2]) :] == 0.0)


@pytest.mark.parametrize(("name", "config"), FRONTENDS)
def test_chunked_computation_is_seamless(
    clips_16k: dict[str, np.ndarray], name: str, config: dict[str, Any]
) -> None:
    frontend = build_frontend(name, config)
    batch = pad_batch(three_clips(clips_16k))
    frontend.cpu_chunk_frames = 10**9  # one step over all frames
    whole = frontend(batch)
    frontend.cpu_chunk_frames = 64  # 21 frames per step for 3 items: many chunk boundaries
    chunked = frontend(batch)
    assert torch.equal(chunked.lengths, whole.lengths)
    torch.testing.assert_close(chunked.values, whole.values, rtol=0, atol=1e-5)
