"""The export into hear-eval-kit's downstream layout decodes back to the cached vectors and labels.

Each split's rows are read the way hear-eval-kit 2021.1.3's ``SplitMemmapDataset`` reads them: the
shape from ``<split>.embedding-dimensions.json``, raw float32 from ``<split>.embeddings.npy`` (no
header), the labels from ``<split>.target-labels.pkl`` and, for event tasks, the file and time of
each row from ``<split>.filename-timestamps.json``.
"""

from __future__ import annotations

import io
import json
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from evaluate_helpers import BandEnergyModel

from echoic.cli.main import main
from echoic.evaluate.cache import embed_task, slug
from echoic.evaluate.events import frame_targets
from echoic.evaluate.heareval_export import MARKER, ExportError, export_task
from echoic.evaluate.task import load_task


class _PlainUnpickler(pickle.Unpickler):
    """Loads lists, strings and numbers only: any class reference in the file fails the test."""

    def find_class(self, module: str, name: str) -> Any:
        raise AssertionError(f"the labels pickle references {module}.{name}")


def _labels(path: Path) -> list[Any]:
    return _PlainUnpickler(io.BytesIO(path.read_bytes())).load()


def _rows(directory: Path, split: str) -> np.ndarray:
    shape = tuple(json.loads((directory / f"{split}.embedding-dimensions.json").read_text()))
    raw = np.fromfile(directory / f"{split}.embeddings.npy", dtype=np.float32)
    assert raw.size == shape[0] * shape[1]  # no header: exactly the rows
    return raw.reshape(shape)


def _heareval_order(task_dir: Path) -> dict[str, list[str]]:
    """hear-eval-kit's row order, written out independently: one Random(0), splits in turn."""
    meta = json.loads((task_dir / "task_metadata.json").read_text())
    rng = random.Random(0)
    order = {}
    for split in meta["splits"]:
        files = list(json.loads((task_dir / f"{split}.json").read_text()))
        idx = list(range(len(files)))
        rng.shuffle(idx)
        order[split] = [files[i] for i in idx]
    return order


def test_scene_export_decodes_to_the_cached_vectors(scene_task: Path, tmp_path: Path) -> None:
    task = load_task(scene_task)
    emb = embed_task(BandEnergyModel(), task, tmp_path / "cache", progress=False)
    out = tmp_path / "export" / task.path.name
    done = export_task(task, emb, out, identity="band-energy-16000")
    expected_order = _heareval_order(scene_task)
    for split, cached in emb.splits.items():
        files = expected_order[split]
        assert done.splits[split].files == files
        assert files != cached.files  # really shuffled (12 clips)
        rows = _rows(out, split)
        np.testing.assert_array_equal(rows, cached.x[[cached.files.index(f) for f in files]])
        content = json.loads((scene_task / f"{split}.json").read_text())
        assert _labels(out / f"{split}.target-labels.pkl") == [content[f] for f in files]
        assert (out / f"{split}.json").read_bytes() == (scene_task / f"{split}.json").read_bytes()
        assert not (out / f"{split}.filename-timestamps.json").exists()
    for name in ("task_metadata.json", "labelvocabulary.csv"):
        assert (out / name).read_bytes() == (scene_task / name).read_bytes()
    marker = json.loads((out / MARKER).read_text())
    assert marker["identity"] == "band-energy-16000" and marker["order"] == "heareval"

    kept = export_task(task, emb, tmp_path / "kept", order="task")
    for split, cached in emb.splits.items():
        assert kept.splits[split].files == cached.files
        np.testing.assert_array_equal(_rows(tmp_path / "kept", split), cached.x)


def test_event_export_has_frames_labels_and_timestamps(event_task: Path, tmp_path: Path) -> None:
    task = load_task(event_task)
    emb = embed_task(BandEnergyModel(), task, tmp_path / "cache", progress=False)
    out = tmp_path / "export"
    export_task(task, emb, out)
    vocab = task.label_index
    for split, cached in emb.splits.items():
        assert cached.offsets is not None and cached.timestamps_ms is not None
        files = _heareval_order(event_task)[split]
        rows = _rows(out, split)
        stamps = json.loads((out / f"{split}.filename-timestamps.json").read_text())
        labels = _labels(out / f"{split}.target-labels.pkl")
        assert len(stamps) == len(labels) == rows.shape[0] == cached.x.shape[0]
        # rows grouped by file in the shuffled order, frames in time order within a file
        names = [Path(s[0]).name for s in stamps]
        assert list(dict.fromkeys(names)) == files
        assert all(s[0] == f"{split}/{Path(s[0]).name}" for s in stamps)
        expected_x, expected_t = [], []
        for f in files:
            i = cached.files.index(f)
            a, b = cached.offsets[i], cached.offsets[i + 1]
            expected_x.append(cached.x[a:b])
            expected_t.append(cached.timestamps_ms[a:b])
        np.testing.assert_array_equal(rows, np.concatenate(expected_x))
        np.testing.assert_array_equal([s[1] for s in stamps], np.concatenate(expected_t))
        # the frame label lists give exactly echoic's own frame targets
        counts = np.array([len(t) for t in expected_t])
        offsets = np.concatenate([[0], np.cumsum(counts)])
        content = task.splits[split]
        targets = frame_targets(content, files, offsets, np.concatenate(expected_t), vocab)
        multi_hot = np.zeros_like(targets)
        for r, frame in enumerate(labels):
            multi_hot[r, [vocab[str(label)] for label in frame]] = 1.0
        np.testing.assert_array_equal(multi_hot, targets)
        assert multi_hot.sum() > 0


def test_export_refuses_unsafe_targets_and_bad_input(scene_task: Path, tmp_path: Path) -> None:
    task = load_task(scene_task)
    emb = embed_task(BandEnergyModel(), task, tmp_path / "cache", progress=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="expected a new or empty folder"):
        export_task(task, emb, foreign)
    assert (foreign / "notes.txt").read_text() == "mine"

    out = tmp_path / "export"
    export_task(task, emb, out)
    (out / "prediction-done.json").write_text("{}")  # the runner's results for the old vectors
    export_task(task, emb, out)
    assert not (out / "prediction-done.json").exists()

    emb.splits["fold00"].x[3, 1] = np.nan
    with pytest.raises(ExportError, match="NaN or inf"):
        export_task(task, emb, tmp_path / "nan")
    emb.splits["fold00"].x[3, 1] = 0.0
    first = next(iter(task.splits["fold01"]))
    task.splits["fold01"][first] = ["low", "mid"]
    with pytest.raises(ExportError, match="expects exactly one"):
        export_task(task, emb, tmp_path / "two-labels")
    with pytest.raises(ExportError, match="order"):
        export_task(task, emb, tmp_path / "order", order="sorted")


def test_cli_verb_exports_a_cached_model(
    scene_task: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    task = load_task(scene_task)
    model = BandEnergyModel()
    embed_task(model, task, tmp_path / "cache", progress=False)
    folder = tmp_path / "cache" / slug(model.identity)
    out = tmp_path / "export"
    argv = ["export-heareval", "--cached-model", f"bands={folder}", "--tasks", str(scene_task)]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    written = out / "bands" / scene_task.name
    assert _rows(written, "fold00").shape == (12, model.embedding_size)
    assert "36 rows × 8 dims" in capsys.readouterr().out
