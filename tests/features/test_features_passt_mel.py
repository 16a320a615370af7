"""``passt_mel`` (PaSST's log-mel: pre-emphasis, centred STFT with a symmetric window shorter than
the FFT, Kaldi mel filters): an item gives the same features alone or padded in a batch, frames
are counted as PaSST counts them. Parity with hear21passt's ``AugmentMelSTFT`` itself (bit for
bit) is in ``tests/convert/test_convert_passt.py``."""

from __future__ import annotations

import pytest
import torch

from echoic.errors import ConfigError
from echoic.features.base import build_frontend
from echoic.features.kaldi import kaldi_mel_bank
from echoic.features.passt_mel import float32_kaldi_mel_bank
from echoic.types import AudioBatch

SR = 32000


def batch_of(clips: list[torch.Tensor], fill: float = 0.0) -> AudioBatch:
    longest = max(len(c) for c in clips) + 777
    waveform = torch.full((len(clips), longest), fill)
    for i, clip in enumerate(clips):
        waveform[i, : len(clip)] = clip
    return AudioBatch(waveform, torch.tensor([len(c) for c in clips]), SR)


def test_an_item_gives_the_same_features_alone_or_in_a_batch():
    frontend = build_frontend("passt_mel", {})
    g = torch.Generator().manual_seed(0)
    clips = [torch.randn(n, generator=g) * 0.1 for n in (40_001, 9_600, 300)]
    batched = frontend(batch_of(clips, fill=0.5))
    assert batched.lengths.tolist() == [1 + (len(c) - 1) // 320 for c in clips]
    for i, clip in enumerate(clips):
        alone = frontend(batch_of([clip]))
        n = int(alone.lengths[0])
        torch.testing.assert_close(
            batched.values[i, :, :n], alone.values[0, :, :n], atol=1e-6, rtol=0
        )
        assert torch.all(batched.values[i, :, n:] == 0.0)


def test_frames_are_counted_as_passt_counts_them():
    frontend = build_frontend("passt_mel", {})
    assert frontend.win_length == 1 and frontend.hop_s == pytest.approx(0.01)
    for n, frames in [(1, 1), (320, 1), (321, 2), (32_000, 100), (32_001, 101)]:
        assert frontend.num_frames(n) == frames
    short = frontend(batch_of([torch.full((5,), 0.1)]))  # zero-extended, then reflected
    assert short.values.shape == (1, 128, 1) and torch.isfinite(short.values).all()


def test_the_float32_filters_are_the_kaldi_filters():
    """The float32 bank (torchaudio's arithmetic, PaSST's buffers) is Kaldi's bank to float32
    precision; the Nyquist row is unused."""
    ours = float32_kaldi_mel_bank(128, 1024, SR, 0.0, 15000.0)
    assert ours.shape == (513, 128) and torch.all(ours[-1] == 0)
    assert float((ours - kaldi_mel_bank(128, 1024, SR, 0.0, 15000.0)).abs().max()) < 2e-5


@pytest.mark.parametrize(
    ("config", "match"),
    [({"win_length": 2048}, "n_fft"), ({"f_max": 17000.0}, "f_max"), ({"log_offset": 0}, "log")],
)
def test_invalid_settings_are_refused(config, match):
    with pytest.raises(ConfigError, match=match):
        build_frontend("passt_mel", config)
