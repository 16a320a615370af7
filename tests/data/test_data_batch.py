"""pad_batch / unpad."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from echoic.data import pad_batch, unpad


def test_mono_padding() -> None:
    a = np.array([1.0, 2.0, 3.0], np.float64)
    b = torch.tensor([4.0])
    batch = pad_batch([a, b, np.zeros(0, np.float32)], 16000)
    assert batch.waveform.dtype == torch.float32 and batch.lengths.dtype == torch.int64
    assert batch.sample_rate == 16000
    expected = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(batch.waveform, expected)
    assert batch.lengths.tolist() == [3, 1, 0]
    parts = unpad(batch)
    assert [p.shape for p in parts] == [(3,), (1,), (0,)]
    torch.testing.assert_close(parts[0], torch.tensor([1.0, 2.0, 3.0]))


def test_multichannel_padding() -> None:
    a = np.ones((2, 5), np.float32)
    b = np.full((2, 3), 2.0, np.float32)
    batch = pad_batch([a, b], 8000)
    assert batch.waveform.shape == (2, 2, 5)
    assert batch.waveform[1, :, 3:].abs().sum() == 0
    assert batch.waveform[1, :, :3].eq(2.0).all()
    assert [tuple(p.shape) for p in unpad(batch)] == [(2, 5), (2, 3)]


def test_errors() -> None:
    with pytest.raises(ValueError, match="at least one"):
        pad_batch([], 16000)
    with pytest.raises(ValueError, match=r"all waveforms \(S,\) or all \(C, S\)"):
        pad_batch([np.zeros(3), np.zeros((1, 3))], 16000)
    with pytest.raises(ValueError, match="same channel count"):
        pad_batch([np.zeros((2, 3)), np.zeros((3, 3))], 16000)
    with pytest.raises(ValueError, match=r"all waveforms \(S,\) or all \(C, S\)"):
        pad_batch([np.zeros((1, 2, 3))], 16000)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=6), st.integers(1, 3), st.booleans())
def test_round_trip(lengths: list[int], channels: int, mono: bool) -> None:
    rng = np.random.default_rng(sum(lengths))
    shape = (lambda n: (n,)) if mono else (lambda n: (channels, n))
    items = [rng.standard_normal(shape(n)).astype(np.float32) for n in lengths]
    batch = pad_batch(items, 16000)
    assert batch.waveform.shape[-1] == max(lengths)
    for item, back in zip(items, unpad(batch), strict=True):
        np.testing.assert_array_equal(back.numpy(), item)
    mask = torch.arange(max(lengths))[None, :] >= batch.lengths[:, None]
    padded = batch.waveform if mono else batch.waveform.transpose(0, 1)
    assert padded[..., mask].abs().sum() == 0
