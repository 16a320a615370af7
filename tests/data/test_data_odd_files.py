"""The odd-file set from echoic.data.testing behaves exactly as its map says."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from echoic.data import find_audio, load_audio, require_min_samples
from echoic.data.testing import MIN_SAMPLES, ODD_FILE_COUNT, make_good_files, make_odd_files
from echoic.errors import AudioError


@pytest.fixture(scope="module")
def odd(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, str]:
    return make_odd_files(tmp_path_factory.mktemp("odd"))


def test_odd_set_composition(odd: dict[Path, str]) -> None:
    assert len(odd) == ODD_FILE_COUNT == 20
    counts = Counter(odd.values())
    assert counts == {
        "empty file": 3,
        "truncated or corrupt": 3,
        "NaN": 2,
        "inf": 1,
        "too short": 3,
        "not a recognised audio format": 2,
        "is a directory": 2,
        "valid: 8 channels": 2,
        "valid: 192000 Hz": 2,
    }
    assert sum(v.startswith("valid") for v in odd.values()) == 4
    assert all(p.exists() for p in odd)


def test_every_odd_file_behaves_as_mapped(odd: dict[Path, str]) -> None:
    for path, expected in odd.items():
        if expected.startswith("valid"):
            x, rate = load_audio(path, sample_rate=16000)
            require_min_samples(x, MIN_SAMPLES, path)
            assert x.ndim == 1 and rate == 16000 and np.isfinite(x).all()
            continue
        with pytest.raises(AudioError) as info:
            x, _ = load_audio(path, sample_rate=16000)
            require_min_samples(x, MIN_SAMPLES, path)
        assert info.value.path == str(path)
        assert str(path) in str(info.value)
        assert expected in str(info.value), (path, str(info.value))


def test_valid_odd_files_content(odd: dict[Path, str]) -> None:
    for path, expected in odd.items():
        if expected == "valid: 8 channels":
            ref, rate = sf.read(path, dtype="float32")
            assert ref.shape == (rate, 8)
            multi, _ = load_audio(path, mono=False)
            assert multi.shape == (8, rate)
            mono, _ = load_audio(path)
            np.testing.assert_allclose(mono, ref.mean(axis=1), atol=1e-6)
        elif expected == "valid: 192000 Hz":
            assert sf.info(path).samplerate == 192000
            x, rate = load_audio(path, sample_rate=16000)
            assert x.shape[0] == round(sf.info(path).duration * 16000)


def test_odd_files_found_by_find_audio(odd: dict[Path, str]) -> None:
    folder = next(iter(odd)).parent
    found = find_audio([folder])
    assert set(found) == set(odd)  # the folders named *.wav included
    assert found == sorted(found, key=lambda p: p.name)


def test_good_files(tmp_path: Path) -> None:
    paths = make_good_files(tmp_path, 3, sample_rate=8000, seconds=0.5)
    assert [p.name for p in paths] == ["good_000.wav", "good_001.wav", "good_002.wav"]
    clips = [load_audio(p)[0] for p in paths]
    assert all(c.shape == (4000,) for c in clips)
    assert not np.allclose(clips[0], clips[1])
    again = make_good_files(tmp_path / "again", 3, sample_rate=8000, seconds=0.5)
    np.testing.assert_array_equal(load_audio(again[2])[0], clips[2])
