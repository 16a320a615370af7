"""The spatial tasks (localisation_binaural, localisation_foa, rt60_binaural): multichannel HEAR
folders whose audio agrees with the geometry in ``spatial.csv``, and splits that share no room, no
HRTF subject and no source clip (traced to ESC-50's own meta.csv). Needs the spatial extra and
the real-audio data; skips without the extra unless ``ECHOIC_REQUIRE_SPATIAL=1``."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from tasks_helpers import DATA, SAMPLE_RATE, SPATIAL_TASKS
from test_tasks_leakage import built_splits, esc50_recording, meta_rows

CHANNELS = {"localisation_binaural": 2, "localisation_foa": 4, "rt60_binaural": 2}
ESC50_FOLDS = {"train": {1, 2, 3}, "valid": {4}, "test": {5}}  # docs/tasks.md


pytestmark = pytest.mark.usefixtures("spatial_extra")  # tests/conftest.py


def spatial_rows(task_dir: Path) -> list[dict[str, str]]:
    with (task_dir / "spatial.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def read_clip(task_dir: Path, row: dict[str, str]) -> np.ndarray:
    x, rate = sf.read(task_dir / str(SAMPLE_RATE) / row["split"] / row["file"], dtype="float64")
    assert rate == SAMPLE_RATE
    return x.T  # (C, S)


def assert_disjoint(rows: list[dict[str, str]], task: str) -> None:
    """No room, HRTF subject, source clip or freesound recording in two splits; sources from the
    split's own ESC-50 folds."""
    fold = {f"esc50/{r['file']}": int(r["fold"]) for r in meta_rows("esc50")}
    recording = {f"esc50/{r['file']}": esc50_recording(r) for r in meta_rows("esc50")}
    seen: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for row in rows:
        split = row["split"]
        assert fold[row["source"]] in ESC50_FOLDS[split], (task, row["file"], row["source"])
        geometry = ",".join(row[k] for k in ("room_x_m", "room_y_m", "room_z_m", "rt60_s"))
        for kind, unit in (
            ("room", row["room"]),
            ("room geometry", geometry),
            ("source", row["source"]),
            ("recording", recording[row["source"]]),
            ("hrtf", row["hrtf"] or None),  # FOA clips have no HRTF
        ):
            if unit is not None:
                seen[kind][unit].add(split)
    for kind, units in seen.items():
        crossing = {u: s for u, s in units.items() if len(s) > 1}
        assert not crossing, (task, kind, dict(list(crossing.items())[:3]))
    sources = [row["source"] for row in rows]
    assert len(sources) == len(set(sources))  # each source clip once per task
    subjects = {row["split"]: row["hrtf"] for row in rows}
    if CHANNELS[task] == 2:
        assert len(set(subjects.values())) == 3  # one head per split, three heads
    else:
        assert set(subjects.values()) == {""}


@pytest.mark.parametrize("task", SPATIAL_TASKS)
def test_small_build_folders_and_labels(small_build, task):
    task_dir = small_build[task]
    rows = spatial_rows(task_dir)
    assert {r["file"]: r["split"] for r in rows} == built_splits(task_dir)
    meta = (task_dir / "task_metadata.json").read_text()
    assert f'"channels": {CHANNELS[task]}' in meta and "channel_layout" in meta
    labels = {}
    for split in ("train", "valid", "test"):
        labels |= json.loads((task_dir / f"{split}.json").read_text())
    for row in rows:
        assert labels[row["file"]] == [row["label"]]
        info = sf.info(task_dir / str(SAMPLE_RATE) / row["split"] / row["file"])
        assert (info.channels, info.frames) == (CHANNELS[task], 2 * SAMPLE_RATE)
        if task.startswith("localisation"):  # label = the 45-degree sector of the true azimuth
            sector = round(float(row["azimuth_deg"]) / 45.0) % 8
            assert row["label"] == f"az{sector * 45:03d}", row
        else:
            lo, hi = (float(v) for v in row["label"][5:-1].split("-"))
            assert lo < float(row["rt60_s"]) < hi, row
    assert_disjoint(rows, task)


def test_audio_agrees_with_the_geometry(small_build):
    """A source on the left is louder in the left ear, and in phase with FOA's W in Y (in front:
    in X). Checked on the clips well to one side (front/back), on average and for most clips: in a
    reverberant room a low-pitched or narrow-band source (crickets) can reach both ears alike or
    correlate either way through its reflections."""
    cues: dict[str, list[tuple[float, float]]] = defaultdict(list)  # cue -> (expected sign, value)
    for task in ("localisation_binaural", "localisation_foa"):
        task_dir = small_build[task]
        for row in spatial_rows(task_dir):
            side = np.sin(np.radians(float(row["azimuth_deg"])))
            front = np.cos(np.radians(float(row["azimuth_deg"])))
            x = read_clip(task_dir, row)
            if task == "localisation_binaural" and abs(side) > 0.7:
                ild_db = 10 * np.log10(np.sum(x[0] ** 2) / np.sum(x[1] ** 2))
                cues["ILD dB"].append((np.sign(side), ild_db))
            if task == "localisation_foa":
                w, y, _, xx = x
                assert np.sum(w**2) > np.sum(y**2) and np.sum(w**2) > np.sum(xx**2)
                for cue, axis, gain in (("corr(W, Y)", y, side), ("corr(W, X)", xx, front)):
                    if abs(gain) > 0.7:
                        corr = np.dot(w, axis) / np.sqrt(np.dot(w, w) * np.dot(axis, axis))
                        cues[cue].append((np.sign(gain), corr))
    assert sorted(cues) == ["ILD dB", "corr(W, X)", "corr(W, Y)"]
    for cue, pairs in cues.items():
        signs, values = np.array(pairs).T
        assert len(pairs) >= 6 and set(signs) == {-1.0, 1.0}, (cue, pairs)
        assert np.mean(signs * values > 0) >= 0.75, (cue, pairs)  # most clips
        assert np.mean(signs * values) > (1.5 if cue == "ILD dB" else 0.15), (cue, pairs)


def test_planned_geometry_reaches_the_renderer(data_dir):
    """Every small-plan clip's impulse response (no source signal: broadband) has the direct
    sound's sign in FOA's Y and X channels and its level difference between the ears."""
    from echoic.data.hrtf import load_hrtf
    from echoic.data.spatial import room_impulse_response
    from echoic.tasks.writer import get_builder

    checked = 0
    for task in ("localisation_binaural", "localisation_foa"):
        builder = get_builder(task)
        for clip in builder.plan(data_dir, "small"):
            r = clip.recipe
            hrtf = load_hrtf(r.hrtf, SAMPLE_RATE) if r.hrtf else None
            rir = room_impulse_response(r.room, r.placement, builder.fmt, SAMPLE_RATE, hrtf)
            side = np.sin(np.radians(r.placement.azimuth_deg))
            front = np.cos(np.radians(r.placement.azimuth_deg))
            if builder.fmt == "binaural" and abs(side) > 0.5:
                ild = np.sum(rir[0] ** 2) - np.sum(rir[1] ** 2)
                assert np.sign(ild) == np.sign(side), clip.name
                checked += 1
            if builder.fmt == "foa":
                for axis, gain in ((rir[1], side), (rir[3], front)):
                    if abs(gain) > 0.5:
                        assert np.sign(np.dot(rir[0], axis)) == np.sign(gain), clip.name
                        checked += 1
    assert checked >= 40


@pytest.mark.parametrize("task", SPATIAL_TASKS)
def test_full_plan_has_no_leak(data_dir, task, monkeypatch):
    """The full plan's splits, without decoding ESC-50: every clip's window is accepted (which
    clips pass the activity rule does not change where a split may draw from)."""
    from echoic.tasks.spatial_scenes import SpatialTask
    from echoic.tasks.writer import get_builder

    monkeypatch.setattr(SpatialTask, "_window", lambda self, data_dir, source: 0.0)
    builder = get_builder(task)
    clips = builder.plan(data_dir, "full")
    assert len(clips) == 640
    rows = builder.extra_files(clips)["spatial.csv"].decode().splitlines()
    assert_disjoint(list(csv.DictReader(rows)), task)
    counts = defaultdict(int)
    for c in clips:
        counts[c.labels[0]] += 1
    assert max(counts.values()) - min(counts.values()) <= len(clips) // 40  # balanced classes
    rooms = {c.recipe.room_id for c in clips}
    assert len(rooms) == 160


def test_small_is_the_start_of_full(data_dir, monkeypatch):
    from echoic.tasks.spatial_scenes import SpatialTask
    from echoic.tasks.writer import get_builder

    monkeypatch.setattr(SpatialTask, "_window", lambda self, data_dir, source: 0.0)
    for task in SPATIAL_TASKS:
        builder = get_builder(task)
        full = {c.name: c for c in builder.plan(data_dir, "full")}
        for c in builder.plan(data_dir, "small"):
            assert full[c.name] == c and full[c.name].recipe == c.recipe


def test_rebuild_gives_identical_bytes(small_build, tmp_path):
    from echoic.tasks.writer import build_tasks

    names = ["localisation_foa", "rt60_binaural"]
    for again in build_tasks(names, tmp_path, DATA, SAMPLE_RATE, "small", progress=False):
        first = small_build[again.name]
        files = sorted(p for p in first.rglob("*") if p.is_file())
        assert len(files) > 30
        for path in files:
            assert (again.directory / path.relative_to(first)).read_bytes() == path.read_bytes()
