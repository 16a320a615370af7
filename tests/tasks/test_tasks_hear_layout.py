"""Every built task, read back with an independent HEAR-layout reader (json/csv/soundfile only)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import soundfile as sf
from tasks_helpers import SAMPLE_RATE

HEAR_FIELDS = {
    "task_name": str,
    "version": str,
    "embedding_type": str,
    "prediction_type": str,
    "split_mode": str,
    "sample_duration": (int, float),
    "evaluation": list,
}
PRIMARY_METRIC = {
    "esc50_scenes": "event_onset_200ms_fms",
    "soundfont_pitch": "pitch_acc",
    "syllables_fsdd": "event_onset_50ms_fms",
    "syllables_librispeech": "event_onset_50ms_fms",
}
SINGLE_LABEL_TASKS = ("syllables_fsdd", "syllables_librispeech")  # every event is a "syl"


def read_task(task_dir: Path) -> dict:
    """A minimal HEAR reader written for this test, not shared with the builders."""
    meta = json.loads((task_dir / "task_metadata.json").read_text())
    with (task_dir / "labelvocabulary.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    if meta["split_mode"] == "trainvaltest":
        splits = ["train", "valid", "test"]
    else:
        splits = [f"fold{i:02d}" for i in range(meta["nfolds"])]
    labels = {s: json.loads((task_dir / f"{s}.json").read_text()) for s in splits}
    return {"meta": meta, "vocab_rows": rows, "splits": splits, "labels": labels}


def test_every_registered_task_was_built(small_build):
    from tasks_helpers import buildable_tasks

    assert sorted(small_build) == sorted(buildable_tasks())
    for name, task_dir in small_build.items():
        assert task_dir.name == f"{name}-v1.0.0-small"


@pytest.mark.parametrize("check", ["metadata", "vocabulary", "splits", "audio"])
def test_hear_layout(small_build, check):
    for name, task_dir in small_build.items():
        task = read_task(task_dir)
        meta = task["meta"]
        if check == "metadata":
            for key, kind in HEAR_FIELDS.items():
                assert isinstance(meta[key], kind), (name, key, meta.get(key))
            assert meta["task_name"] == name
            assert meta["embedding_type"] in ("scene", "event")
            assert meta["prediction_type"] in ("multiclass", "multilabel")
            assert meta["split_mode"] in ("trainvaltest", "presplit_kfold", "new_split_kfold")
            assert meta["splits"] == task["splits"]
            assert meta["sample_duration"] > 0 and meta["evaluation"]
            if name in PRIMARY_METRIC:
                assert meta["evaluation"][0] == PRIMARY_METRIC[name]
            if meta["embedding_type"] == "event" and name not in SINGLE_LABEL_TASKS:
                assert meta["evaluation"] == ["event_onset_200ms_fms", "segment_1s_er"]
        elif check == "vocabulary":
            rows = task["vocab_rows"]
            assert rows[0] == ["idx", "label"], name
            assert [int(r[0]) for r in rows[1:]] == list(range(len(rows) - 1)), name
            vocab = [r[1] for r in rows[1:]]
            assert len(set(vocab)) == len(vocab) > (0 if name in SINGLE_LABEL_TASKS else 1), name
            used = set()
            for content in task["labels"].values():
                for value in content.values():
                    used |= {v["label"] if isinstance(v, dict) else v for v in value}
            assert used <= set(vocab), (name, used - set(vocab))
        elif check == "splits":
            seen: set[str] = set()
            for split, content in task["labels"].items():
                assert content, (name, split)
                assert not seen & set(content), (name, split, "file in two splits")
                seen |= set(content)
                for file, value in content.items():
                    if meta["embedding_type"] == "scene":
                        assert isinstance(value, list) and len(value) >= 1, (name, file)
                        if meta["prediction_type"] == "multiclass":
                            assert len(value) == 1, (name, file, value)
                    else:
                        duration_ms = meta["sample_duration"] * 1000.0
                        for ev in value:
                            assert set(ev) == {"label", "start", "end"}, (name, file, ev)
                            assert 0.0 <= ev["start"] < ev["end"] <= duration_ms, (file, ev)
        else:
            expected = round(meta["sample_duration"] * SAMPLE_RATE)
            for split, content in task["labels"].items():
                folder = task_dir / str(SAMPLE_RATE) / split
                assert sorted(p.name for p in folder.iterdir()) == sorted(content), (name, split)
                for file in content:
                    info = sf.info(str(folder / file))
                    channels = meta.get("channels", 1)  # multichannel tasks say so (spatial)
                    assert (info.samplerate, info.channels) == (SAMPLE_RATE, channels), file
                    assert info.subtype == "PCM_16" and info.format == "WAV", (name, file)
                    assert info.frames == expected, (name, file, info.frames, expected)


def test_audio_is_not_silent_or_clipped(small_build):
    import numpy as np

    for name, task_dir in small_build.items():
        for wav in sorted((task_dir / str(SAMPLE_RATE)).rglob("*.wav"))[:40]:
            x, _ = sf.read(str(wav), dtype="int16")
            peak = int(np.max(np.abs(x.astype(np.int32))))
            assert peak > 30, (name, wav.name, "silent")
            clipped = np.mean(np.abs(x.astype(np.int32)) >= 32767)
            assert clipped < 0.001, (name, wav.name, clipped)


def test_pitch_labels_are_midi_numbers(small_build):
    if "soundfont_pitch" not in small_build:
        pytest.skip("fluidsynth or the soundfonts are not installed")
    task = read_task(small_build["soundfont_pitch"])
    vocab = [r[1] for r in task["vocab_rows"][1:]]
    assert all(21 <= int(v) <= 108 for v in vocab)
    assert vocab == sorted(vocab, key=int)
    for content in task["labels"].values():
        for file, (label,) in content.items():
            assert f"_n{int(label):03d}_" in file  # the rendered note's pitch, from its name
