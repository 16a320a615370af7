"""``whisper_logmel``: frame counts and centres, batch invariance, short clips (its parity with
transformers' WhisperFeatureExtractor is in tests/convert/test_convert_hf_whisper.py)."""

from __future__ import annotations

import pytest
import torch

from echoic.features.base import build_frontend
from echoic.types import AudioBatch


def features(waves: list[torch.Tensor], fill: float = 0.0):
    lengths = torch.tensor([len(w) for w in waves])
    batch = torch.full((len(waves), int(lengths.max())), fill)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    return build_frontend("whisper_logmel")(AudioBatch(batch, lengths, 16000))


def test_frames_are_centred_on_every_hop_sample():
    frontend = build_frontend("whisper_logmel")
    assert frontend.hop_s == 0.01 and frontend.first_centre_s == 0.0 and frontend.min_samples == 1
    for n, frames in [(0, 0), (1, 1), (160, 1), (161, 2), (16000, 100), (16001, 101)]:
        assert frontend.num_frames(n) == frames
    for frame in (0, 7, 63):
        for offset in (-40, 0, 40):
            wave = torch.zeros(16000)
            wave[max(0, frame * 160 + offset)] = 0.9
            values = features([wave]).values[0]
            assert int(values.mean(dim=0).argmax()) == frame


def test_a_padded_item_equals_the_item_alone_and_padding_is_zero():
    g = torch.Generator().manual_seed(0)
    waves = [torch.randn(n, generator=g) * 0.1 for n in (23_456, 7_001, 150)]
    batch = features(waves, fill=0.7)
    assert batch.lengths.tolist() == [147, 44, 1]
    for i, wave in enumerate(waves):
        alone = features([wave])
        n = int(alone.lengths[0])
        assert torch.equal(batch.values[i, :, :n], alone.values[0])
        assert torch.all(batch.values[i, :, n:] == 0.0)


@pytest.mark.parametrize("n", [1, 150, 201, 400])
def test_short_clips_are_finite_and_floored(n):
    out = features([torch.full((n,), 0.3)]).values[0]
    assert out.shape[1] == -(-n // 160) and torch.isfinite(out).all()
    # Whisper's floor: nothing lies more than 8 / 4 below the item's maximum
    assert float(out.max() - out.min()) <= 2.0 + 1e-6


def test_silence_is_whispers_silence():
    out = features([torch.zeros(1600)]).values[0]
    torch.testing.assert_close(out, torch.full_like(out, -1.5))  # (log10(1e-10) + 4) / 4
