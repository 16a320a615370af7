"""``debian_sfx`` on packages built in the test: PCM de-duplication, categories, licences, the
size opt-in (no download, no network)."""

from __future__ import annotations

import csv
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from debian_fixtures import fake_apt, make_rcc, write_audio, write_copyright

from echoic.corpus import CorpusContext, build_corpus
from echoic.corpus.pcm import pcm_sha256
from echoic.corpus.sources import debian_sfx
from echoic.corpus.sources.debian_sfx import DebianPackage, category_of

__all__ = ["fake_apt"]  # the fixture, re-exported for pytest

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2020 Somebody
License: GPL-2+

Files: data/sounds/animals/*
Copyright: 2021 Recordist
License: CC-BY-SA-3.0

Files: voices.rcc
Copyright: 2022 Speaker
License: CC0-1.0

License: GPL-2+
 text
"""


def _tone(seconds: float = 0.5, freq: float = 440.0, rate: int = 16000) -> np.ndarray:
    """16-bit samples (libsndfile's WAV and FLAC writers round float input differently)."""
    t = np.arange(int(rate * seconds)) / rate
    return np.round(9000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def test_pcm_hash_is_the_samples_not_the_container(tmp_path: Path) -> None:
    x = _tone()
    sf.write(tmp_path / "a.wav", x, 16000, subtype="PCM_16")
    sf.write(tmp_path / "a.flac", x, 16000, subtype="PCM_16")
    sf.write(tmp_path / "b.wav", x, 22050, subtype="PCM_16")  # same samples, another rate
    sf.write(tmp_path / "c.wav", x // 2, 16000, subtype="PCM_16")
    assert (tmp_path / "a.wav").read_bytes() != (tmp_path / "a.flac").read_bytes()
    assert pcm_sha256(tmp_path / "a.wav") == pcm_sha256(tmp_path / "a.flac")
    assert pcm_sha256(tmp_path / "a.wav") != pcm_sha256(tmp_path / "b.wav")
    assert pcm_sha256(tmp_path / "a.wav") != pcm_sha256(tmp_path / "c.wav")


def test_category_rules() -> None:
    assert category_of("usr/share/games/x/music/theme.ogg") == "music"
    assert category_of("usr/share/games/x/Music/theme.ogg") == "music"
    assert category_of("usr/share/hedgewars/Data/Sounds/voices/Pirate/Hello.ogg") == "speech"
    assert category_of("usr/share/x/sound/player/announce/fight.wav") == "speech"
    assert category_of("usr/share/tuxpaint/stamps/animals/crow_desc_fr.ogg") == "speech"
    assert category_of("usr/share/games/x/sounds/explosion.wav") == "sfx"
    tux = next(p for p in debian_sfx.PACKAGES if p.name == "tuxpaint-stamps-default")
    assert category_of("usr/share/tuxpaint/stamps/symbols/7_de.ogg", tux) == "speech"
    assert category_of("usr/share/tuxpaint/stamps/symbols/7_en_GB.ogg", tux) == "speech"
    assert category_of("usr/share/tuxpaint/stamps/animals/crow.ogg", tux) == "sfx"
    sonic = next(p for p in debian_sfx.PACKAGES if p.name == "sonic-pi-samples")
    assert category_of("usr/share/sonic-pi/samples/loop_amen.flac", sonic) == "music"
    assert category_of("usr/share/sonic-pi/samples/drum_snare_hard.flac", sonic) == "sfx"
    # a package's own pattern wins over the generic folder rule
    own = DebianPackage("p", 1, sfx=("*/music/click.ogg",))
    assert category_of("a/music/click.ogg", own) == "sfx"


@pytest.fixture
def packages(tmp_path: Path, fake_apt, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Two small packages sharing one sound (a WAV in one, a FLAC inside a zip in the other) and
    one big package; the source's table replaced by them."""
    shared = _tone(0.4, 523.0)
    game = tmp_path / "game"
    root = game / "usr/share/games/game"
    write_audio(root / "data/sounds/animals/dog.ogg", 1)
    write_audio(root / "data/sounds/door.wav", 2)
    write_audio(root / "data/music/theme.ogg", 3, seconds=1.0)
    sf.write(root / "data/sounds/shared.wav", shared, 16000, subtype="PCM_16")
    sf.write(root / "data/sounds/shared_copy.flac", shared, 16000, subtype="PCM_16")
    (root / "data/readme.txt").write_text("not audio")
    write_copyright(game, "game-data", COPYRIGHT)

    edu = tmp_path / "edu"
    eroot = edu / "usr/share/edu"
    eroot.mkdir(parents=True)
    buf = tmp_path / "member.flac"
    sf.write(buf, shared, 16000, subtype="PCM_16", format="FLAC")
    write_audio(tmp_path / "bell.wav", 4)
    with zipfile.ZipFile(eroot / "base.pk3", "w") as zf:
        zf.write(buf, "sound/shared.flac")
        zf.write(tmp_path / "bell.wav", "sound/bell.wav")
        zf.writestr("scripts/x.cfg", "x")
    write_audio(tmp_path / "hello.ogg", 5)
    (eroot / "voices.rcc").write_bytes(
        make_rcc({"voices-ogg/en/hello.ogg": (tmp_path / "hello.ogg").read_bytes()})
    )
    write_audio(tmp_path / "bird.wav", 7)
    (eroot / "sounds.cat").write_bytes(
        make_cat([("Bird. By X. License: Creative Commons Zero 1.0.", tmp_path / "bird.wav")])
    )
    write_copyright(edu, "edu-data", COPYRIGHT)

    big = tmp_path / "big"
    write_audio(big / "usr/share/big/boom.wav", 6, seconds=3.0)
    write_copyright(big, "big-data", COPYRIGHT)
    for name, tree in (("game-data", game), ("edu-data", edu), ("big-data", big)):
        fake_apt(name, tree)
    table = (
        DebianPackage("game-data", 1),
        DebianPackage("edu-data", 1),
        DebianPackage("big-data", 1),
    )
    monkeypatch.setattr(debian_sfx.DebianSfx, "packages", table)
    return {"game": game, "edu": edu, "big": big}


def make_cat(entries: list[tuple[str, Path]]) -> bytes:
    """An OpenTTD .cat: (offset | 0x80000000, size) pairs, then length byte + NUL-ended text +
    RIFF bytes per entry."""
    header_size = 8 * len(entries)
    table, body = b"", b""
    for text, wav in entries:
        raw = text.encode() + b"\0"
        data = wav.read_bytes()
        table += struct.pack("<II", (header_size + len(body)) | 0x80000000, len(data))
        body += bytes([len(raw)]) + raw + data
    return table + body


def _table(path: Path, column: str) -> dict[str, str]:
    with open(path, newline="") as fh:
        return {row["file"].split("/debian-cache/")[-1]: row[column] for row in csv.DictReader(fh)}


def test_debian_sfx_builds_with_dedup_categories_licences(
    packages: dict[str, Path], fake_apt, tmp_path: Path
) -> None:
    big_mb = (tmp_path / "pool/big-data_1.0-1_all.deb").stat().st_size / 1e6
    limit = big_mb * 0.99  # the two small packages fit, the big one does not
    assert (tmp_path / "pool/edu-data_1.0-1_all.deb").stat().st_size / 1e6 < limit
    ctx = CorpusContext(tmp_path, max_package_mb=limit)
    out = tmp_path / "corpus"
    summary = build_corpus(out, ["debian_sfx"], ctx, progress=False)
    assert summary.failures == []
    assert "big-data" not in fake_apt.downloads  # over the limit: never downloaded
    origins = [r["origin"] for r in csv.DictReader(open(out / "manifest.csv"))]
    inner = sorted(o.split(":", 2)[2] for o in origins)
    assert inner == sorted(
        [
            # base.pk3's sound/shared.flac holds the samples of shared.wav: dropped
            "usr/share/edu/base.pk3:sound/bell.wav",
            "usr/share/games/game/data/music/theme.ogg",
            "usr/share/games/game/data/sounds/animals/dog.ogg",
            "usr/share/games/game/data/sounds/door.wav",
            "usr/share/games/game/data/sounds/shared.wav",  # shared_copy.flac dropped
            "usr/share/edu/voices.rcc:voices-ogg/en/hello.ogg",
            "usr/share/edu/sounds.cat:000.wav",
        ]
    )
    assert all(o.startswith("debian:") and "=1.0-1:" in o for o in origins)
    stats = json.loads((out / "summary.json").read_text())["sources"]["debian_sfx"]
    assert stats["duplicates"] == 2
    assert set(stats["category_hours"]) == {"sfx", "speech", "music"}
    assert stats["category_hours"]["music"] == pytest.approx(1.0 / 3600, abs=1e-4)
    categories = _table(out / "categories.csv", "category")
    by_name = {Path(k).name: v for k, v in categories.items()}
    assert by_name == {
        "bell.wav": "sfx",
        "theme.ogg": "music",
        "dog.ogg": "sfx",
        "door.wav": "sfx",
        "shared.wav": "sfx",
        "hello.ogg": "speech",
        "000.wav": "sfx",
    }
    licences = {Path(k).name: v for k, v in _table(out / "licences.csv", "licence").items()}
    assert licences["dog.ogg"] == "CC-BY-SA-3.0"  # data/sounds/animals/*
    assert licences["door.wav"] == "GPL-2+"
    assert licences["hello.ogg"] == "CC0-1.0"  # the archive's own Files: pattern
    assert licences["bell.wav"] == "GPL-2+"
    assert licences["000.wav"] == "Creative Commons Zero 1.0"  # stated in the .cat entry

    opted_in = build_corpus(
        tmp_path / "all", ["debian_sfx"], CorpusContext(tmp_path, max_package_mb=big_mb * 2), False
    )
    assert "big-data" in fake_apt.downloads
    assert opted_in.total_files == summary.total_files + 1


def test_pcm_dedup_spans_sources(packages: dict[str, Path], tmp_path: Path) -> None:
    """A second pcm_dedup source listing the same packages adds nothing."""
    from echoic.corpus.base import SOURCES

    @SOURCES.register("debian_sfx_again")
    class Again(debian_sfx.DebianSfx):
        name = "debian_sfx_again"

    try:
        ctx = CorpusContext(tmp_path, max_package_mb=1000.0)
        summary = build_corpus(tmp_path / "c", ["debian_sfx", "debian_sfx_again"], ctx, False)
        assert summary.sources["debian_sfx_again"]["files"] == 0
        first = summary.sources["debian_sfx"]
        assert summary.total_files == first["files"] == 8
        assert summary.sources["debian_sfx_again"]["duplicates"] == 8 + first["duplicates"]
    finally:
        SOURCES._entries.pop("debian_sfx_again", None)  # type: ignore[attr-defined]
