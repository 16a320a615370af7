"""load_audio / audio_info: every format, resampling, channels, spans, limits and error paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from echoic.data import AUDIO_EXTENSIONS, audio_info, load_audio, require_min_samples, resample
from echoic.data.testing import FORMAT_NAMES, make_format_files, tone
from echoic.errors import AudioError

RATE = 16000
LOSSLESS = {"wav", "flac"}
NATIVE_RATE = {name: RATE for name in FORMAT_NAMES} | {"webm": 48000}
SUFFIX = {"vorbis": ".ogg", "opus": ".opus", "webm": ".webm", "m4a": ".m4a", "mp3": ".mp3"}


@pytest.fixture(scope="module")
def formats(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_format_files(tmp_path_factory.mktemp("formats"), sample_rate=RATE, seconds=1.0)


def peak_frequency(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.shape[0])))
    return float(np.fft.rfftfreq(x.shape[0], 1 / rate)[np.argmax(spectrum)])


def test_every_written_format_has_a_listed_extension(formats: dict[str, Path]) -> None:
    assert set(formats) == set(FORMAT_NAMES)
    for path in formats.values():
        assert path.suffix in AUDIO_EXTENSIONS


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_format_loads_at_native_rate(formats: dict[str, Path], name: str) -> None:
    x, rate = load_audio(formats[name])
    assert x.dtype == np.float32 and x.ndim == 1
    assert rate == NATIVE_RATE[name]
    expected = rate  # one second
    if name in LOSSLESS:
        assert x.shape[0] == expected
        ref, _ = sf.read(formats[name], dtype="float32")
        np.testing.assert_array_equal(x, ref)
    else:  # codec padding: at most one AAC frame (1024 samples at 16 kHz) too long or short
        assert abs(x.shape[0] - expected) <= 1024 * rate // RATE


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_format_matches_source_tone_at_16k(formats: dict[str, Path], name: str) -> None:
    x, rate = load_audio(formats[name], sample_rate=RATE)
    assert rate == RATE
    source = tone(RATE, 1.0)
    assert abs(x.shape[0] - source.shape[0]) <= 1024
    n = min(x.shape[0], source.shape[0])
    correlation = np.corrcoef(x[:n], source[:n])[0, 1]
    assert correlation > (0.999 if name in LOSSLESS else 0.9)
    assert peak_frequency(x[:n], RATE) == pytest.approx(440.0, abs=2.0)


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_audio_info(formats: dict[str, Path], name: str) -> None:
    info = audio_info(formats[name])
    assert info.path == formats[name]
    assert (info.sample_rate, info.channels) == (NATIVE_RATE[name], 1)
    assert info.backend == ("pyav" if name in ("mp3", "m4a", "webm") else "soundfile")
    assert info.duration_s == pytest.approx(1.0, abs=0.07)
    assert info.frames == pytest.approx(info.duration_s * info.sample_rate, abs=1)


@pytest.mark.parametrize(
    ("source_rate", "target_rate"), [(192000, 16000), (8000, 16000), (44100, 16000), (48000, 22050)]
)
def test_resampling_keeps_frequency_and_length(
    tmp_path: Path, source_rate: int, target_rate: int
) -> None:
    path = tmp_path / "tone.wav"
    sf.write(path, tone(source_rate, 0.5, frequency=1000.0), source_rate, subtype="FLOAT")
    x, rate = load_audio(path, sample_rate=target_rate)
    assert rate == target_rate and x.dtype == np.float32
    assert abs(x.shape[0] - round(0.5 * target_rate)) <= 1
    assert peak_frequency(x, rate) == pytest.approx(1000.0, abs=target_rate / x.shape[0])
    assert np.abs(x).max() == pytest.approx(0.5, abs=0.01)


def test_resample_function() -> None:
    x = tone(48000, 0.5, frequency=1000.0)
    y = resample(x, 48000, 16000)
    assert y.shape == (8000,) and y.dtype == np.float32
    assert peak_frequency(y, 16000) == pytest.approx(1000.0, abs=2.0)
    stereo = resample(np.stack([x, -x]), 48000, 16000)
    assert stereo.shape == (2, 8000)
    np.testing.assert_allclose(stereo[0], y, atol=1e-6)
    np.testing.assert_allclose(stereo[1], -y, atol=1e-6)
    same = resample(x.astype(np.float64), 48000, 48000)
    assert same.dtype == np.float32
    np.testing.assert_array_equal(same, x)
    with pytest.raises(ValueError, match="sample_rate"):
        resample(x, 48000, -1)


def test_same_rate_is_not_resampled(tmp_path: Path) -> None:
    path = tmp_path / "noise.wav"
    y = np.random.default_rng(1).uniform(-0.5, 0.5, 3000).astype(np.float32)
    sf.write(path, y, RATE, subtype="FLOAT")
    x, rate = load_audio(path, sample_rate=RATE)
    assert rate == RATE
    np.testing.assert_array_equal(x, y)


def test_channels_mean_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "three.wav"
    y = np.random.default_rng(2).uniform(-0.5, 0.5, (2000, 3)).astype(np.float32)
    sf.write(path, y, RATE, subtype="FLOAT")
    multi, _ = load_audio(path, mono=False)
    assert multi.shape == (3, 2000) and multi.flags.c_contiguous
    np.testing.assert_array_equal(multi, y.T)
    mono, _ = load_audio(path)
    np.testing.assert_allclose(mono, y.mean(axis=1), atol=1e-7)
    resampled, rate = load_audio(path, sample_rate=8000, mono=False)
    assert resampled.shape == (3, 1000) and rate == 8000


def test_lossy_overshoot_is_not_clipped(tmp_path: Path) -> None:
    path = tmp_path / "loud.wav"
    y = np.full(1000, 1.25, np.float32)
    y[::2] = -1.3
    sf.write(path, y, RATE, subtype="FLOAT")
    x, _ = load_audio(path)
    assert x.max() == pytest.approx(1.25) and x.min() == pytest.approx(-1.3)


@pytest.mark.parametrize("name", ["wav", "flac", "opus", "m4a"])
def test_offset_and_duration_cut_the_full_load(formats: dict[str, Path], name: str) -> None:
    full, rate = load_audio(formats[name])
    part, part_rate = load_audio(formats[name], offset_s=0.25, duration_s=0.5)
    assert part_rate == rate
    start = round(0.25 * rate)
    assert part.shape[0] == round(0.5 * rate)
    np.testing.assert_allclose(part, full[start : start + part.shape[0]], atol=1e-4)


def test_duration_past_the_end_is_cut(formats: dict[str, Path]) -> None:
    x, _ = load_audio(formats["wav"], offset_s=0.75, duration_s=10.0)
    assert x.shape[0] == RATE // 4


@pytest.mark.parametrize("name", ["wav", "m4a"])
def test_max_duration(formats: dict[str, Path], name: str) -> None:
    with pytest.raises(AudioError, match="too long") as info:
        load_audio(formats[name], max_duration_s=0.5)
    assert info.value.path == str(formats[name])
    x, _ = load_audio(formats[name], max_duration_s=2.0)
    assert x.shape[0] > RATE // 2
    x, _ = load_audio(formats[name], duration_s=0.25, max_duration_s=0.5)  # the span counts
    assert x.shape[0] == RATE // 4


def test_soundfile_failure_falls_back_to_pyav(formats: dict[str, Path], tmp_path: Path) -> None:
    disguised = tmp_path / "really_aac.wav"
    disguised.write_bytes(formats["m4a"].read_bytes())
    assert audio_info(disguised).backend == "pyav"
    x, _ = load_audio(disguised)
    y, _ = load_audio(formats["m4a"])
    np.testing.assert_array_equal(x, y)


def check_error(path: Path, phrase: str, **kwargs: object) -> AudioError:
    with pytest.raises(AudioError) as info:
        load_audio(path, **kwargs)  # type: ignore[arg-type]
    error = info.value
    assert error.path == str(path) and str(path) in str(error)
    assert phrase in error.cause, error.cause
    assert error.fix
    return error


def test_missing_directory_empty(tmp_path: Path) -> None:
    check_error(tmp_path / "nope.wav", "no such file")
    folder = tmp_path / "folder.flac"
    folder.mkdir()
    check_error(folder, "is a directory")
    empty = tmp_path / "empty.mp3"
    empty.touch()
    check_error(empty, "empty file")


def test_zero_length_and_offset_past_end(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros(0, np.float32), RATE)
    check_error(path, "zero-length audio")
    path = tmp_path / "short.wav"
    sf.write(path, np.zeros(100, np.float32), RATE)
    check_error(path, "past the end", offset_s=1.0)


def test_corrupt_files_name_the_backends(formats: dict[str, Path], tmp_path: Path) -> None:
    cut = tmp_path / "cut.flac"
    cut.write_bytes(formats["flac"].read_bytes()[:30])
    error = check_error(cut, "truncated or corrupt")
    assert "soundfile" in error.cause and "pyav" in error.cause
    garbage = tmp_path / "noise.m4a"
    garbage.write_bytes(bytes(np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8)))
    error = check_error(garbage, "cannot decode audio")
    assert "pyav" in error.cause


def test_non_finite_samples(tmp_path: Path) -> None:
    y = np.zeros((1600, 2), np.float32)
    y[800, 1] = np.nan
    y[900, 0] = -np.inf
    path = tmp_path / "bad.wav"
    sf.write(path, y, RATE, subtype="FLOAT")
    error = check_error(path, "1 NaN, 1 inf")
    assert "0.050 s" in error.cause


def test_require_min_samples(tmp_path: Path) -> None:
    require_min_samples(np.zeros(400), 400, "ok.wav")
    require_min_samples(np.zeros((2, 400)), 400, "ok.wav")
    with pytest.raises(AudioError, match=r"too short: 1 sample, need ≥ 400") as info:
        require_min_samples(np.zeros(1), 400, tmp_path / "a.wav")
    assert info.value.path == str(tmp_path / "a.wav")
    with pytest.raises(AudioError, match="too short: 399 samples"):
        require_min_samples(np.zeros((2, 399)), 400, "b.wav")


def test_bad_arguments(formats: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        load_audio(formats["wav"], sample_rate=0)
    with pytest.raises(ValueError, match="offset_s"):
        load_audio(formats["wav"], offset_s=-1.0)
