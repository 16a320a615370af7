"""Multichannel crops: every channel cut at the same offset, tiled / padded alike, other channel
counts skipped, and mono models still mixing down."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from echoic.train.data import CropDataset, collate_crops, list_clips

SR = 16000
UNIT = 2.0**-20  # exact float32 multiples: a sample's position is readable from its value


def marked(seconds: float, channels: int) -> np.ndarray:
    """``(S, C)`` samples ``(c * 100_000 + i) * UNIT``: channel and position readable."""
    n = round(seconds * SR)
    index = np.arange(n)[:, None] + 100_000 * np.arange(channels)[None, :]
    return (index * UNIT).astype(np.float32)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "audio"
    root.mkdir()
    sf.write(root / "a_long.wav", marked(2.0, 2), SR, subtype="FLOAT")
    sf.write(root / "b_short.wav", marked(0.3, 2), SR, subtype="FLOAT")
    sf.write(root / "c_mono.wav", marked(1.0, 1)[:, 0], SR, subtype="FLOAT")
    return root


def test_channels_are_cropped_together(folder: Path):
    clips = list_clips([str(folder / "a_long.wav")])
    item = CropDataset(clips, SR, crop_s=0.5, views=3, seed=4, channels=2)[0]
    audio = item["audio"]
    assert audio.shape == (3, 2, 8000) and item["failed"] == []
    position = np.round(audio / UNIT).astype(np.int64)
    assert np.all(position[:, 1] - position[:, 0] == 100_000)  # same offset in both channels
    assert np.all(np.diff(position, axis=-1) == 1)  # contiguous crops
    assert len(set(position[:, 0, 0].tolist())) == 3  # three different offsets


@pytest.mark.parametrize("pad", ["repeat", "zero"])
def test_short_multichannel_clips_are_tiled_or_zero_padded(folder: Path, pad: str):
    clips = list_clips([str(folder / "b_short.wav")])
    item = CropDataset(clips, SR, crop_s=0.5, pad=pad, channels=2)[0]
    position = np.round(item["audio"][0] / UNIT).astype(np.int64)  # (2, 8000)
    n, index = round(0.3 * SR), np.arange(8000)
    for c in range(2):
        if pad == "repeat":
            expected = index % n + c * 100_000
        else:
            expected = np.where(index < n, index + c * 100_000, 0)
        assert np.array_equal(position[c], expected)
    assert item["lengths"].tolist() == [8000 if pad == "repeat" else n]


def test_files_of_another_channel_count_are_skipped_and_reported(folder: Path):
    clips = list_clips([str(folder)])
    dataset = CropDataset(clips, SR, crop_s=0.2, seed=0, shuffle=False, channels=2)
    batch = collate_crops([dataset[i] for i in range(3)])
    assert batch["waveform"].shape == (3, 2, 3200)
    assert [Path(p).name for p in batch["failed"]] == ["c_mono.wav"]


def test_a_mono_dataset_mixes_multichannel_files_down(folder: Path):
    clips = list_clips([str(folder / "a_long.wav")])
    audio = CropDataset(clips, SR, crop_s=0.5, seed=4)[0]["audio"]
    assert audio.shape == (1, 8000)
    position = np.round(audio[0] / UNIT).astype(np.int64) - 50_000  # channel mean: i + 50_000
    assert np.all(np.diff(position) == 1) and 0 <= position[0] <= 2 * SR - 8000
