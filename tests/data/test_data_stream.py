"""stream_audio yields fixed blocks whose concatenation equals load_audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from echoic.data import load_audio, stream_audio
from echoic.data.testing import make_format_files
from echoic.errors import AudioError


@pytest.fixture(scope="module")
def formats(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_format_files(tmp_path_factory.mktemp("formats"), sample_rate=16000, seconds=1.0)


def collect(path: Path, block_s: float, rate: int | None, mono: bool = True) -> list[np.ndarray]:
    return list(stream_audio(path, block_s, sample_rate=rate, mono=mono))


@pytest.mark.parametrize("name", ["wav", "flac", "vorbis", "opus", "mp3", "m4a", "webm"])
@pytest.mark.parametrize("rate", [None, 16000, 22050])
def test_stream_equals_load(formats: dict[str, Path], name: str, rate: int | None) -> None:
    expected, out_rate = load_audio(formats[name], sample_rate=rate)
    blocks = collect(formats[name], 0.3, rate)
    block = round(0.3 * out_rate)
    assert all(b.shape == (block,) and b.dtype == np.float32 for b in blocks[:-1])
    assert 0 < blocks[-1].shape[0] <= block
    joined = np.concatenate(blocks)
    assert joined.shape == expected.shape
    np.testing.assert_allclose(joined, expected, atol=1e-4, rtol=0)


def test_stream_multichannel(tmp_path: Path) -> None:
    path = tmp_path / "stereo.flac"
    y = np.random.default_rng(4).uniform(-0.5, 0.5, (44100 * 2 + 17, 2))
    sf.write(path, y, 44100, subtype="PCM_24")
    for mono in (True, False):
        expected, _ = load_audio(path, sample_rate=16000, mono=mono)
        blocks = collect(path, 0.25, 16000, mono=mono)
        if not mono:
            assert all(b.shape == (2, 4000) for b in blocks[:-1])
        np.testing.assert_allclose(np.concatenate(blocks, axis=-1), expected, atol=1e-4, rtol=0)


def test_tiny_blocks_and_block_longer_than_file(formats: dict[str, Path]) -> None:
    expected, _ = load_audio(formats["wav"], sample_rate=8000)
    tiny = collect(formats["wav"], 0.001, 8000)
    assert len(tiny) == 1000 and all(b.shape == (8,) for b in tiny)
    np.testing.assert_allclose(np.concatenate(tiny), expected, atol=1e-4, rtol=0)
    (whole,) = collect(formats["wav"], 60.0, 8000)
    np.testing.assert_allclose(whole, expected, atol=1e-4, rtol=0)


def test_non_finite_block_raises_after_earlier_blocks(tmp_path: Path) -> None:
    y = np.zeros(16000, np.float32)
    y[13000] = np.inf
    path = tmp_path / "late_inf.wav"
    sf.write(path, y, 16000, subtype="FLOAT")
    stream = stream_audio(path, 0.25)
    assert [next(stream).shape[0] for _ in range(3)] == [4000] * 3
    with pytest.raises(AudioError, match=r"1 inf\), the first at 0\.812 s") as info:
        next(stream)
    assert info.value.path == str(path)


def test_stream_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.touch()
    with pytest.raises(AudioError, match="empty file"):
        next(stream_audio(empty, 1.0))
    zero = tmp_path / "zero.wav"
    sf.write(zero, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="zero-length"):
        next(stream_audio(zero, 1.0))
    with pytest.raises(ValueError, match="block_s"):
        next(stream_audio(zero, 0.0))
