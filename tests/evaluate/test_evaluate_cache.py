"""The embedding cache: resumes an interrupted split, reuses finished work, resamples when the
task has no audio at the model's rate, and keys on model identity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from evaluate_helpers import BandEnergyModel

from echoic.evaluate.cache import embed_task
from echoic.evaluate.task import load_task


def test_interrupted_embedding_resumes_where_it_stopped(scene_task: Path, tmp_path: Path) -> None:
    task = load_task(scene_task)
    n_clips = sum(len(v) for v in task.splits.values())  # 3 folds x 12 clips
    crashing = BandEnergyModel(fail_after=5)
    with pytest.raises(RuntimeError, match="simulated crash"):
        embed_task(crashing, task, tmp_path / "cache", piece_clips=4, progress=False)
    done = crashing.clips
    assert done == 20  # 5 pieces of 4 clips were finished and saved
    resumed = BandEnergyModel()
    result = embed_task(resumed, task, tmp_path / "cache", piece_clips=4, progress=False)
    assert resumed.clips == n_clips - done
    assert not result.cached and result.embed_seconds > 0
    fresh = embed_task(BandEnergyModel(), task, tmp_path / "fresh", piece_clips=4, progress=False)
    for split, emb in fresh.splits.items():
        assert result.splits[split].files == emb.files == list(task.splits[split])
        np.testing.assert_array_equal(result.splits[split].x, emb.x)
    assert not list((result.directory).glob("*.part*"))  # pieces merged and removed

    again = BandEnergyModel()
    cached = embed_task(again, task, tmp_path / "cache", piece_clips=4, progress=False)
    assert again.clips == 0 and cached.cached and cached.embed_seconds == 0.0


def test_event_task_cache_has_frames_and_timestamps(event_task: Path, tmp_path: Path) -> None:
    task = load_task(event_task)
    emb = embed_task(BandEnergyModel(), task, tmp_path / "cache", piece_clips=5, progress=False)
    split = emb.splits["fold00"]
    assert split.offsets is not None and split.timestamps_ms is not None
    assert split.offsets[-1] == split.x.shape[0] == split.timestamps_ms.shape[0]
    assert np.all(np.diff(split.offsets) == 40)  # 2-s clips, 50-ms frames
    np.testing.assert_allclose(split.timestamps_ms[:3], [25.0, 75.0, 125.0])


def test_resamples_when_the_task_lacks_the_model_rate(scene_task: Path, tmp_path: Path) -> None:
    task = load_task(scene_task)
    lines: list[str] = []
    model = BandEnergyModel(sample_rate=8000)
    emb = embed_task(model, task, tmp_path / "cache", progress=False, log=lines.append)
    assert emb.source_rate == 16000 and emb.model_rate == 8000
    assert any("resampling" in line and "16000 Hz" in line for line in lines)
    assert emb.directory.name == "8000from16000"
    # half the samples per 50-ms frame, same frame count: the model really saw 8 kHz audio
    assert emb.splits["fold00"].x.shape == (12, 8)


def test_cache_key_changes_with_model_identity(scene_task: Path, tmp_path: Path) -> None:
    task = load_task(scene_task)
    a = embed_task(BandEnergyModel(), task, tmp_path / "cache", progress=False)
    other = BandEnergyModel()
    other.identity = "band-energy-v2"
    b = embed_task(other, task, tmp_path / "cache", progress=False)
    assert a.directory != b.directory and other.clips == 36
