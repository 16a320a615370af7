"""Clip lists, manifests, crops and views, the resumable stream, corrupt files, the data hash."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from echoic.errors import ConfigError, EchoicError
from echoic.train.data import (
    CropDataset,
    StreamSampler,
    build_dataloader,
    data_hash,
    list_clips,
)

SR = 16000


UNIT = 2.0**-20  # sample values are exact multiples: positions read back exactly


def ramp(seconds: float, first: int = 0) -> np.ndarray:
    """Float32 samples ``(first + i) * UNIT``: a crop's position is readable from its values."""
    n = round(seconds * SR)
    return ((first + np.arange(n)) * UNIT).astype(np.float32)


def position(x: np.ndarray) -> np.ndarray:
    return np.round(x / UNIT).astype(np.int64)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "audio"
    (root / "sub").mkdir(parents=True)
    for i, seconds in enumerate([3.0, 0.5, 2.0]):
        sf.write(root / f"c{i}.wav", ramp(seconds, first=i * 100_000), SR, subtype="FLOAT")
    sf.write(root / "sub" / "d.wav", ramp(1.5, 300_000), SR, subtype="FLOAT")
    (root / "notes.txt").write_text("not audio")
    return root


def write_bad(folder: Path) -> list[Path]:
    bad = [folder / "broken.wav", folder / "empty.flac", folder / "tiny.wav"]
    bad[0].write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
    bad[1].write_bytes(b"")
    sf.write(bad[2], np.zeros(100, np.float32), SR)  # shorter than one 400-sample window
    return bad


def test_folders_files_and_manifests(folder: Path, tmp_path: Path) -> None:
    clips = list_clips([str(folder)])
    assert [c.key for c in clips] == ["c0.wav", "c1.wav", "c2.wav", "sub/d.wav"]
    csv = tmp_path / "m.csv"
    csv.write_text("file,label\naudio/c2.wav,x\naudio/c0.wav,y\n")
    tsv = tmp_path / "m.tsv"
    tsv.write_text("path\tstart\tduration\naudio/c0.wav\t1.0\t0.5\n")
    txt = tmp_path / "m.txt"
    txt.write_text("# list\naudio/c1.wav\n\n")
    jsonl = tmp_path / "m.jsonl.gz"
    rows = [
        {"id": "r", "sources": [{"type": "file", "channels": [0], "source": "audio/c0.wav"}]},
        {
            "id": "cut",
            "start": 0.5,
            "duration": 1.0,
            "recording": {"sources": [{"source": "audio/c2.wav"}]},
        },
        {"audio_filepath": "audio/sub/d.wav", "duration": 1.0},
    ]
    with gzip.open(jsonl, "wt") as fh:
        fh.write("\n".join(json.dumps(r) for r in rows))
    clips = list_clips([str(csv), str(tsv), str(txt), str(jsonl), str(folder / "c1.wav")])
    paths = [Path(c.path).relative_to(tmp_path).as_posix() for c in clips]
    assert paths == [
        "audio/c2.wav", "audio/c0.wav", "audio/c0.wav", "audio/c1.wav",
        "audio/c0.wav", "audio/c2.wav", "audio/sub/d.wav", "audio/c1.wav",
    ]  # fmt: skip
    assert (clips[2].start_s, clips[2].duration_s) == (1.0, 0.5)
    assert (clips[5].start_s, clips[5].duration_s) == (0.5, 1.0)
    assert list_clips([str(folder)], max_files=2)[-1].key == "c1.wav"


def test_shared_prefix_and_missing_sources(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECHOIC_DATA", str(folder.parent))
    assert [c.key for c in list_clips(["shared:audio/sub"])] == ["d.wav"]
    with pytest.raises(ConfigError, match="does not exist"):
        list_clips([str(folder / "nope")])
    with pytest.raises(ConfigError, match="empty"):
        list_clips([])


def test_data_hash_identifies_the_list_not_its_location(folder: Path, tmp_path: Path) -> None:
    first = data_hash(list_clips([str(folder)]))
    assert first.startswith("sha256:") and first == data_hash(list_clips([str(folder)]))
    moved = shutil.copytree(folder, tmp_path / "elsewhere")
    assert data_hash(list_clips([str(moved)])) == first
    sf.write(moved / "c1.wav", ramp(0.6), SR, subtype="FLOAT")  # content (size) changed
    assert data_hash(list_clips([str(moved)])) != first
    assert data_hash(list_clips([str(folder)], max_files=3)) != first


def test_crops_are_contiguous_random_views_of_one_clip(folder: Path) -> None:
    clips = list_clips([str(folder / "c0.wav")])  # 3 s
    ds = CropDataset(clips, SR, crop_s=0.5, views=4, seed=0)
    item = ds[0]
    assert item["audio"].shape == (4, 8000) and item["lengths"].tolist() == [8000] * 4
    pos = position(item["audio"])
    assert (np.diff(pos, axis=1) == 1).all()  # consecutive samples of the clip
    starts = set(pos[:, 0].tolist())
    assert len(starts) == 4 and all(0 <= s <= 48000 - 8000 for s in starts)
    np.testing.assert_array_equal(
        ds[0]["audio"], CropDataset(clips, SR, 0.5, 4, seed=0)[0]["audio"]
    )
    assert not np.array_equal(ds[0]["audio"], ds[1]["audio"])  # next epoch, new offsets


def test_short_clips_are_tiled_or_zero_padded(folder: Path) -> None:
    clip = list_clips([str(folder / "c1.wav")])  # 0.5 s = 8000 samples
    tiled = CropDataset(clip, SR, crop_s=1.2, pad="repeat")[0]
    x, _ = sf.read(folder / "c1.wav", dtype="float32")
    np.testing.assert_array_equal(tiled["audio"][0], np.resize(x, 19200))
    padded = CropDataset(clip, SR, crop_s=1.2, pad="zero")[0]
    assert padded["lengths"].tolist() == [8000]
    np.testing.assert_array_equal(padded["audio"][0, :8000], x)
    assert not padded["audio"][0, 8000:].any()


def test_segments_from_manifests_are_respected(folder: Path, tmp_path: Path) -> None:
    tsv = tmp_path / "m.tsv"
    tsv.write_text("path\tstart\tduration\naudio/c0.wav\t1.0\t0.5\n")
    item = CropDataset(list_clips([str(tsv)]), SR, crop_s=2.0, pad="zero")[0]
    assert item["lengths"].tolist() == [8000]
    x, _ = sf.read(folder / "c0.wav", dtype="float32")
    np.testing.assert_array_equal(item["audio"][0, :8000], x[16000:24000])


def test_stream_partitions_ranks_and_resumes() -> None:
    def take(sampler: StreamSampler, n: int) -> list[int]:
        it = iter(sampler)
        return [next(it) for _ in range(n)]

    r0, r1 = take(StreamSampler(0, 0, 2), 5), take(StreamSampler(0, 1, 2), 5)
    assert r0 == [0, 2, 4, 6, 8] and r1 == [1, 3, 5, 7, 9]
    assert take(StreamSampler(lambda: 3, 1, 2), 2) == [7, 9]


def test_every_clip_once_per_epoch(folder: Path) -> None:
    ds = CropDataset(list_clips([str(folder)]), SR, crop_s=0.1, seed=3)
    for epoch in range(2):
        firsts = {int(position(ds[epoch * 4 + i]["audio"])[0, 0]) // 100_000 for i in range(4)}
        assert firsts == {0, 1, 2, 3}  # every clip exactly once per epoch


def test_corrupt_files_are_skipped_and_reported(folder: Path) -> None:
    bad = {str(p) for p in write_bad(folder)}
    clips = list_clips([str(folder)])
    ds = CropDataset(clips, SR, crop_s=0.2, min_samples=400, seed=1)
    failed: set[str] = set()
    for g in range(2 * len(clips)):  # two epochs: every file is tried at least once
        item = ds[g]
        assert item["audio"].shape == (1, 3200) and np.isfinite(item["audio"]).all()
        failed.update(item["failed"])
    assert failed == bad
    loader = build_dataloader(ds, batch_size=7)
    batch = next(iter(loader))
    assert batch["waveform"].shape == (7, 3200) and batch["waveform"].dtype == torch.float32


def test_only_corrupt_files_stop_with_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    write_bad(folder)
    ds = CropDataset(list_clips([str(folder)]), SR, crop_s=0.2, min_samples=400)
    with pytest.raises(EchoicError, match="could not be read"):
        ds[0]


def test_worker_processes_give_the_same_batches(folder: Path) -> None:
    ds = CropDataset(list_clips([str(folder)]), SR, crop_s=0.3, views=2, seed=5)
    a, b = (iter(build_dataloader(ds, batch_size=3, start=1, num_workers=n)) for n in (0, 1))
    for _ in range(2):
        x, y = next(a), next(b)
        assert torch.equal(x["waveform"], y["waveform"]) and torch.equal(x["lengths"], y["lengths"])
        assert x["waveform"].shape == (6, 4800)


def test_batches_say_which_rows_are_views_of_which_clip(folder: Path) -> None:
    ds = CropDataset(list_clips([str(folder)]), SR, crop_s=0.3, views=2, seed=5)
    batch = next(iter(build_dataloader(ds, batch_size=3)))
    assert batch["clip_index"].tolist() == [0, 0, 1, 1, 2, 2]
    assert batch["view_index"].tolist() == [0, 1, 0, 1, 0, 1]
    # rows of one clip are crops of one file (file k's samples count from k * 100_000)
    files = position(batch["waveform"].numpy())[:, 0] // 100_000
    assert all(files[2 * c] == files[2 * c + 1] for c in range(3))
    assert len(set(files.tolist())) == 3
