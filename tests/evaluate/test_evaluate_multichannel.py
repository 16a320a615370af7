"""Multichannel task audio (binaural, FOA): a mono model is given the channel mean, a C-channel
model all C channels, and a model of another channel count is refused. Also the azimuth metric."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from echoic.errors import ConfigError
from echoic.evaluate.cache import embed_task
from echoic.evaluate.task import load_task

SR = 16000


def write_stereo_task(root: Path) -> Path:
    """A tiny train/valid/test scene task of 2-channel wavs whose channels differ."""
    task = root / "stereo-v1.0.0-full"
    meta = {
        "task_name": "stereo",
        "version": "v1.0.0",
        "embedding_type": "scene",
        "prediction_type": "multiclass",
        "split_mode": "trainvaltest",
        "sample_duration": 0.5,
        "evaluation": ["top1_acc"],
        "splits": ["train", "valid", "test"],
        "channels": 2,
    }
    task.mkdir(parents=True)
    (task / "task_metadata.json").write_text(json.dumps(meta))
    (task / "labelvocabulary.csv").write_text("idx,label\n0,a\n1,b\n")
    rng = np.random.default_rng(0)
    for split in meta["splits"]:
        (task / str(SR) / split).mkdir(parents=True)
        content = {}
        for k, label in enumerate("ab"):
            left = 0.5 * rng.standard_normal(SR // 2)
            right = 0.1 * rng.standard_normal(SR // 2)
            name = f"{split}-{k}.wav"
            sf.write(task / str(SR) / split / name, np.stack([left, right], 1).clip(-1, 1), SR)
            content[name] = [label]
        (task / f"{split}.json").write_text(json.dumps(content))
    return task


class RecordingModel:
    """Keeps every waveform it is given; its scene embedding is the mean sample per channel."""

    label = "recording (test)"
    embedding_size = 1
    min_samples = 400
    sample_rate = SR

    def __init__(self, channels: int = 1) -> None:
        self.channels = channels
        self.identity = f"recording-{channels}"
        self.seen: list[np.ndarray] = []

    def scene_embeddings(self, waveforms, sample_rate=None):
        self.seen += [np.asarray(w) for w in waveforms]
        return torch.tensor(np.array([[float(np.mean(w))] for w in waveforms]))


def test_a_mono_model_reads_the_channel_mean(tmp_path: Path) -> None:
    task = load_task(write_stereo_task(tmp_path))
    mono, stereo = RecordingModel(1), RecordingModel(2)
    embed_task(mono, task, tmp_path / "cache", progress=False)
    embed_task(stereo, task, tmp_path / "cache", progress=False)
    files = [(s, f) for s in ("train", "valid", "test") for f in sorted(task.splits[s])]
    assert len(mono.seen) == len(stereo.seen) == len(files) == 6
    for (split, f), m, s in zip(files, mono.seen, stereo.seen, strict=True):
        x, _ = sf.read(task.audio_path(SR, split, f), dtype="float32")  # (S, 2)
        assert m.shape == (x.shape[0],)
        np.testing.assert_allclose(m, x.mean(axis=1), atol=1e-7)
        assert s.shape == (2, x.shape[0])
        np.testing.assert_array_equal(s, x.T)


def test_a_model_of_another_channel_count_is_refused(tmp_path: Path) -> None:
    task = load_task(write_stereo_task(tmp_path))
    with pytest.raises(ConfigError, match="2 channel"):
        embed_task(RecordingModel(4), task, tmp_path / "cache", progress=False)


def test_azimuth_sector_error_in_degrees() -> None:
    from echoic.evaluate.metrics import MINIMISED, SCENE_METRICS, scene_metric_batched

    eye = np.eye(8)
    targets = eye[[0, 0, 2, 7]]
    probs = eye[[0, 1, 6, 0]]  # errors: 0, 1 sector, 4 sectors (180 degrees), 1 sector across 0
    expected = (0 + 45 + 180 + 45) / 4
    assert SCENE_METRICS["azimuth_mae_deg"](probs, targets) == pytest.approx(expected)
    batched = scene_metric_batched("azimuth_mae_deg", np.stack([probs, targets]), targets)
    np.testing.assert_allclose(batched, [expected, 0.0])
    assert "azimuth_mae_deg" in MINIMISED
