"""The ``binaural_scenes`` corpus source (rendered 2-channel scenes through the MIT KEMAR head) and
multichannel FLAC writing in the corpus builder. The dry clips are noise bursts in a fake
``gcompris_voices`` folder made here (no shared data). Needs the ``spatial`` extra; skips without it
unless ``ECHOIC_REQUIRE_SPATIAL=1``."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from echoic.corpus import CorpusContext, CorpusError, build_corpus, read_manifest
from echoic.corpus.build import _flac_bytes
from echoic.corpus.sources.binaural_scenes import BinauralScenes, FoaScenes
from echoic.corpus.sources.gcompris_voices import GcomprisVoices

RATE = 16000
SEED = 5  # scene00002 of this seed is a source at azimuth 88.9 (the listener's left), RT60 0.37 s
SCENES = 3


@pytest.fixture
def dry_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data folder whose only dry source is a fake ``gcompris_voices`` of four noise bursts."""
    folder = tmp_path / "data" / "gcompris_voices"
    (folder / "audio").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = ["file,lang"]
    for k in range(4):
        n = int(RATE * (0.6 + 0.3 * k))
        sf.write(folder / "audio" / f"w{k}.wav", 0.3 * rng.standard_normal(n) * np.hanning(n), RATE)
        rows.append(f"audio/w{k}.wav,xx")
    (folder / "meta.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.setattr(BinauralScenes, "dry_sources", ("gcompris_voices",))  # FoaScenes too
    return tmp_path / "data"


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.usefixtures("spatial_extra")
def test_scenes_are_binaural_levelled_lateralised_deterministic_and_resumable(
    dry_data: Path, tmp_path: Path
) -> None:
    ctx = CorpusContext(data_dir=dry_data, max_hours=SCENES * 3.0 / 3600, seed=SEED)
    out = tmp_path / "corpus"
    summary = build_corpus(out, ["binaural_scenes"], ctx, progress=False)
    rows = read_manifest(out)
    assert summary.failures == [] and len(rows) == SCENES
    assert [r["file"] for r in rows] == [
        f"audio/binaural_scenes/scene{i:05d}.flac" for i in range(SCENES)
    ]
    lateral = 0
    for row in rows:
        y, rate = sf.read(out / row["file"], dtype="float64")
        assert rate == RATE and y.shape == (3 * RATE, 2)
        rms_db = 20 * np.log10(np.sqrt(np.mean(y**2)))
        assert abs(rms_db + 25.0) < 0.5, rms_db
        assert not np.allclose(y[:, 0], y[:, 1])
        assert "HRTF mit_kemar" in row["origin"] and "gcompris_voices/audio/w" in row["origin"]
        azimuth = float(re.search(r"azimuth ([0-9.]+) deg", row["origin"]).group(1))  # type: ignore[union-attr]
        if abs(np.sin(np.radians(azimuth))) > 0.95:  # clearly to one side
            lateral += 1
            near, far = (0, 1) if np.sin(np.radians(azimuth)) > 0 else (1, 0)  # 90 = left
            ild = 10 * np.log10(np.sum(y[:, near] ** 2) / np.sum(y[:, far] ** 2))
            assert ild > 3.0, (azimuth, ild)
            # interaural time difference: the far ear's signal lags the near ear's
            n = 2 * y.shape[0]
            cc = np.fft.irfft(np.fft.rfft(y[:, far], n) * np.conj(np.fft.rfft(y[:, near], n)), n)
            lags = np.r_[np.arange(0, 20), np.arange(-20, 0)]
            lag = int(lags[np.argmax(np.r_[cc[:20], cc[-20:]])])
            assert 4 <= lag <= 12, (azimuth, lag)  # 0.25-0.75 ms: a head's width
    assert lateral == 1
    licences = read_csv(out / "licences.csv")
    assert {r["licence"] for r in licences} == {GcomprisVoices.licence}
    assert {r["category"] for r in read_csv(out / "categories.csv")} == {"speech"}

    again = tmp_path / "again"
    build_corpus(again, ["binaural_scenes"], ctx, progress=False)
    assert [r["sha256"] for r in read_manifest(again)] == [r["sha256"] for r in rows]

    stamps = {p: p.stat().st_mtime_ns for p in (out / "audio").rglob("*.flac")}
    resumed = build_corpus(out, ["binaural_scenes"], ctx, progress=False)
    assert {p: p.stat().st_mtime_ns for p in (out / "audio").rglob("*.flac")} == stamps
    assert resumed.content_hash == summary.content_hash


@pytest.mark.usefixtures("spatial_extra")
def test_foa_scenes_are_four_channels_pointing_at_the_source(
    dry_data: Path, tmp_path: Path
) -> None:
    ctx = CorpusContext(data_dir=dry_data, max_hours=4 * 3.0 / 3600, seed=SEED)
    out = tmp_path / "foa"
    summary = build_corpus(out, ["foa_scenes"], ctx, progress=False)
    rows = read_manifest(out)
    assert summary.failures == [] and len(rows) == 4 and FoaScenes.fmt == "foa"
    binaural = build_corpus(tmp_path / "bin", ["binaural_scenes"], ctx, progress=False)
    origins = {r["origin"] for r in read_manifest(tmp_path / "bin")}
    assert binaural.failures == [] and not origins & {r["origin"] for r in rows}  # other seeds
    for row in rows:
        y, rate = sf.read(out / row["file"], dtype="float64")
        assert rate == RATE and y.shape == (3 * RATE, 4)
        assert "FOA" in row["origin"] and "HRTF" not in row["origin"]
        azimuth = float(re.search(r"azimuth ([0-9.]+) deg", row["origin"]).group(1))  # type: ignore[union-attr]
        # ACN / SN3D W Y Z X: the active intensity <W Y>, <W X> points at the direct sound
        w, ychan, xchan = y[:, 0], y[:, 1], y[:, 3]
        estimate = np.degrees(np.arctan2(np.mean(w * ychan), np.mean(w * xchan))) % 360
        error = abs((estimate - azimuth + 180) % 360 - 180)
        assert error < 45, (azimuth, estimate)  # reverberation bends it, the direct path wins


def test_scene_count_follows_max_hours_and_dry_sources_are_required(tmp_path: Path) -> None:
    source = BinauralScenes()
    assert source.count(CorpusContext(tmp_path)) == 3000
    assert source.count(CorpusContext(tmp_path, max_hours=0.0025)) == 3  # 9 s
    assert source.count(CorpusContext(tmp_path, max_hours=100.0)) == 3000
    why = source.unavailable(CorpusContext(data_dir=tmp_path))
    assert why is not None and "none of its dry sources" in why and "gcompris_voices" in why


def test_flac_bytes_writes_channel_first_audio_and_refuses_other_shapes() -> None:
    t = np.arange(RATE) / RATE
    x = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.25 * np.sin(2 * np.pi * 660 * t)])
    y, rate = sf.read(io.BytesIO(_flac_bytes(x, RATE)), dtype="float64")
    assert rate == RATE and y.shape == (RATE, 2)
    np.testing.assert_allclose(y.T, x, atol=1 / 32767)
    mono, _ = sf.read(io.BytesIO(_flac_bytes(x[0], RATE)), dtype="float64")
    assert mono.shape == (RATE,)
    loud, _ = sf.read(io.BytesIO(_flac_bytes(4 * x, RATE)), dtype="float64")
    assert abs(np.max(np.abs(loud)) - 1.0) < 1e-3  # peak-normalised, both channels by one gain
    np.testing.assert_allclose(loud.T, x / 0.5, atol=2 / 32767)
    bad_nan = x.copy()
    bad_nan[1, 7] = np.nan
    for bad in (x[:, :, None], x.T, np.zeros((2, 0)), np.zeros(0), bad_nan):
        with pytest.raises(CorpusError, match=r"expected .*; found shape"):
            _flac_bytes(bad, RATE)
