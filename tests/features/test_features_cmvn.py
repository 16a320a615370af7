"""Per-utterance CMVN (``cmvn: true`` on ``kaldi_fbank`` and ``centred_mel``; s3prl's APC, NPC,
TERA / Mockingjay): the references' formula over each item's own frames, so an item gives the
same features alone or padded in a batch; constant bins and one-frame items give 0. Parity with
s3prl's own extractors is checked in ``tests/convert/test_convert_{tera,predictive_coding}.py``."""

from __future__ import annotations

import pytest
import torch

from echoic.features.base import build_frontend
from echoic.features.cmvn import utterance_cmvn
from echoic.types import AudioBatch


def test_the_formula_is_the_references():
    values = torch.randn(1, 5, 40, generator=torch.Generator().manual_seed(0)) * 3 + 1
    expected = (values - values.mean(-1, keepdim=True)) / (values.std(-1, keepdim=True) + 1e-10)
    out = utterance_cmvn(values, torch.tensor([40]), 1e-10)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_items_use_their_own_frames_and_degenerate_bins_give_zero():
    values = torch.randn(3, 4, 30, generator=torch.Generator().manual_seed(1))
    values[0, 2] = -15.942385  # a bin at the Kaldi floor in every frame
    lengths = torch.tensor([30, 12, 1])
    out = utterance_cmvn(values, lengths, 1e-10)
    alone = utterance_cmvn(values[1:2, :, :12], torch.tensor([12]), 1e-10)
    torch.testing.assert_close(out[1:2, :, :12], alone, atol=1e-6, rtol=0)
    assert torch.all(out[1, :, 12:] == 0) and torch.all(out[2] == 0)
    assert torch.all(out[0, 2] == 0)  # float32 means would leave rounding noise / 1e-10 here


MEL = {"n_fft": 400, "n_mels": 80, "log": "natural", "log_offset": 1e-10, "top_db": None}
CASES = [
    ("kaldi_fbank", {"window": "hamming", "n_mels": 80, "cmvn": True}),
    ("centred_mel", {**MEL, "target_level_db": -25.0, "cmvn": True}),
]


@pytest.mark.parametrize(("name", "config"), CASES)
def test_frontends_normalise_each_item_alone(name, config):
    frontend = build_frontend(name, config)
    g = torch.Generator().manual_seed(2)
    wave = torch.zeros(2, 16000)
    wave[0] = torch.randn(16000, generator=g) * 0.1
    wave[1, :7000] = torch.randn(7000, generator=g) * 0.01
    both = frontend(AudioBatch(wave, torch.tensor([16000, 7000]), 16000))
    alone = frontend(AudioBatch(wave[1:, :7000], torch.tensor([7000]), 16000))
    n = int(alone.lengths[0])
    torch.testing.assert_close(both.values[1, :, :n], alone.values[0], atol=1e-5, rtol=0)
    valid = both.values[0]
    torch.testing.assert_close(valid.mean(-1), torch.zeros(80), atol=1e-5, rtol=0)
    torch.testing.assert_close(valid.std(-1), torch.ones(80), atol=1e-4, rtol=0)
