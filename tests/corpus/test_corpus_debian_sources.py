"""The Debian-package caption sources on packages built in the test (no download, no network)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from debian_fixtures import fake_apt, make_qm, make_rcc, write_audio, write_copyright

from echoic.corpus import SOURCES, CorpusContext, CorpusError, build_corpus
from echoic.corpus.archives import qm_translations, rcc_files
from echoic.corpus.debian import CopyrightIndex, freesound_ids, locale_tag, unpacked
from echoic.corpus.sources import sfx_packs
from echoic.data.captions import Caption, read_captions

__all__ = ["fake_apt"]  # the fixture, re-exported for pytest


def _by_key(source: str, ctx: CorpusContext) -> dict:
    return {item.key: item for item in SOURCES.get(source)().items(ctx)}


@pytest.fixture
def tuxpaint(tmp_path: Path, fake_apt) -> Path:
    tree = tmp_path / "tux"
    stamps = tree / "usr/share/tuxpaint/stamps"
    crow = stamps / "animals/birds"
    (crow).mkdir(parents=True)
    (crow / "crow.txt").write_text("A crow.\nfr.utf8=Un corbeau.\npt_BR.utf8=Um corvo.\n")
    write_audio(crow / "crow.ogg", 1)
    write_audio(crow / "crow_desc.ogg", 2)
    write_audio(crow / "crow_desc_fr.ogg", 3)
    write_audio(crow / "crow_desc_ru.ogg", 4)  # no Russian text: the spoken words are unknown
    math = stamps / "symbols/math"
    math.mkdir(parents=True)
    (math / "7.txt").write_text("Seven.\nde.utf8=Sieben.\nen_GB.utf8=Seven.\n")
    write_audio(math / "7.ogg", 5)
    write_audio(math / "7_de.ogg", 6)
    write_audio(math / "7_en_GB.ogg", 7)
    write_audio(stamps / "animals/insects/mosquito.ogg", 8)  # a sound without a .txt
    (stamps / "animals/mammals").mkdir(parents=True)
    (stamps / "animals/mammals/sheep_lamb.txt").write_text("A baby sheep (a lamb).\n")
    write_audio(stamps / "animals/mammals/sheep_lamb.ogg", 9)  # "_lamb" is not a locale
    write_copyright(tree, "tuxpaint-stamps-default")
    fake_apt("tuxpaint-stamps-default", tree)
    return tree


def test_tuxpaint_sounds_get_their_descriptions_and_translations(tuxpaint: Path) -> None:
    items = _by_key("tuxpaint_captions", CorpusContext(Path(".")))
    assert set(items) == {
        "animals/birds/crow.ogg",
        "symbols/math/7.ogg",
        "symbols/math/7_de.ogg",
        "symbols/math/7_en_GB.ogg",
        "animals/insects/mosquito.ogg",
        "animals/mammals/sheep_lamb.ogg",
    }
    crow = items["animals/birds/crow.ogg"]
    assert crow.captions == (
        Caption("A crow.", "en", "human"),
        Caption("Un corbeau.", "fr", "human"),
        Caption("Um corvo.", "pt-BR", "human"),
    )
    assert items["symbols/math/7_de.ogg"].captions == (Caption("Sieben.", "de", "human"),)
    assert items["symbols/math/7_en_GB.ogg"].captions == (Caption("Seven.", "en-GB", "human"),)
    assert items["animals/insects/mosquito.ogg"].captions == (
        Caption("mosquito", "en", "template"),
    )
    assert items["animals/mammals/sheep_lamb.ogg"].captions[0].text == "A baby sheep (a lamb)."
    assert crow.licence == "GPL-2"
    assert crow.origin == (
        "debian:tuxpaint-stamps-default=1.0-1:usr/share/tuxpaint/stamps/animals/birds/crow.ogg"
    )
    assert items["symbols/math/7_de.ogg"].group == items["symbols/math/7.ogg"].group


def test_tuxpaint_spoken_pairs_speech_with_the_spoken_text(tuxpaint: Path) -> None:
    ctx = CorpusContext(Path("."))
    spoken = _by_key("tuxpaint_spoken", ctx)
    assert {k: i.captions for k, i in spoken.items()} == {
        "animals/birds/crow_desc.ogg": (Caption("A crow.", "en", "human"),),
        "animals/birds/crow_desc_fr.ogg": (Caption("Un corbeau.", "fr", "human"),),
    }
    sounds = _by_key("tuxpaint_captions", ctx)
    # a stamp's sound and its spoken description share a group, hence a split
    assert spoken["animals/birds/crow_desc.ogg"].group == sounds["animals/birds/crow.ogg"].group


def test_package_is_downloaded_once_and_verified(tuxpaint: Path, fake_apt, monkeypatch) -> None:
    first = unpacked("tuxpaint-stamps-default")
    again = unpacked("tuxpaint-stamps-default")
    assert first == again and fake_apt.downloads == ["tuxpaint-stamps-default"]
    assert (first / "usr/share/tuxpaint/stamps/symbols/math/7.txt").is_file()


def test_oversized_or_tampered_packages_are_refused(tmp_path: Path, fake_apt, monkeypatch) -> None:
    tree = tmp_path / "big"
    write_audio(tree / "usr/share/x/a.wav", 1)
    write_copyright(tree, "big-data")
    fake_apt("big-data", tree)
    with pytest.raises(CorpusError, match="over the 0 MB limit"):
        unpacked("big-data", max_mb=0.0001)
    assert fake_apt.downloads == []  # refused before downloading anything
    from echoic.corpus import debian

    honest = debian._apt_show
    monkeypatch.setattr(debian, "_apt_show", lambda n: honest(n).replace("SHA256: ", "SHA256: 0"))
    with pytest.raises(CorpusError, match="sha256"):
        unpacked("big-data")


def test_copyright_index_maps_installed_paths_to_source_patterns() -> None:
    index = CopyrightIndex(
        """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: x
License: MIT

Files: etc/samples/*
Copyright: y
License: CC0

Files: src/activities/canal_lock/resource/lock.wav
Copyright: z
License: CC-BY-3.0

Files: src/activities/memory/resource/*_LA.ogg
Copyright: w
License: free-art
""",
        "pkg",
    )
    assert index.licence("usr/share/sonic-pi/samples/bd_boom.flac") == "CC0"  # etc/ dropped
    assert index.licence("usr/share/sonic-pi/buffers/rand.wav") == "MIT"
    assert index.licence("gcompris/src/activities/canal_lock/resource/lock.wav") == "CC-BY-3.0"
    assert index.licence("gcompris/src/activities/memory/resource/Bark_LA.ogg") == "free-art"
    assert index.licence("gcompris/src/activities/memory/resource/BarkLACut.ogg") == "MIT"
    # another activity's resource/ folder is not canal_lock's
    assert index.licence("gcompris/src/activities/other/resource/lock.wav") == "MIT"
    assert "not machine-readable" in CopyrightIndex("free text", "pkg").licence("a.wav")
    text = "Source: http://freesound.org/people/EcoDTR/sounds/27281/ and sounds/99"
    assert freesound_ids(text) == {"27281"}
    assert [locale_tag(x) for x in ("pt_BR", "zh_tw", "sr@latin", "ca@valencia", "de")] == [
        "pt-BR", "zh-TW", "sr-Latn", "ca-valencia", "de",
    ]  # fmt: skip


def test_rcc_and_qm_readers_round_trip() -> None:
    files = {"gcompris/src/a/x.wav": b"RIFF1234", "gcompris/src/b/y.qml": b"text " * 50}
    found = {
        path: read()
        for path, read in rcc_files(make_rcc(files, frozenset({"gcompris/src/b/y.qml"})))
    }
    assert found == files
    qm = make_qm([("board1", "Horse", "Le cheval"), ("x", "Cow", ""), ("y", "Horse", "autre")])
    assert qm_translations(qm) == {"Horse": "Le cheval"}


BOARD = """QtObject { property var tab : [
    { "title": qsTr("Horse"), "text": qsTr("The horse goes 'neigh'."),
      "audio": GCompris.ApplicationInfo.getAudioFilePath("qrc:/gcompris/src/activities/farm/resource/horse.$CA") },
]}"""
INSTRUMENTS = """var v = [[ { "text": qsTr("Find the clarinet"),
  "audio": ApplicationInfo.getAudioFilePath("qrc:/gcompris/src/activities/instruments/resource/clarinet.$CA") } ]]"""


def test_gcompris_descriptions_translations_and_templates(tmp_path: Path, fake_apt) -> None:
    audio = {
        n: write_audio(tmp_path / "a" / f"{n}.ogg", i).read_bytes()
        for i, n in enumerate(("horse", "clarinet", "frogs", "digit"))
    }
    tree = tmp_path / "gc"
    rcc = tree / "usr/share/gcompris-qt/rcc"
    rcc.mkdir(parents=True)
    (rcc / "farm.rcc").write_bytes(make_rcc({
        "gcompris/src/activities/farm/resource/board/board1.qml": BOARD.encode(),
        "gcompris/src/activities/farm/resource/horse.ogg": audio["horse"],
    }))  # fmt: skip
    (rcc / "instruments.rcc").write_bytes(make_rcc({
        "gcompris/src/activities/instruments/instruments.js": INSTRUMENTS.encode(),
        "gcompris/src/activities/instruments/resource/clarinet.ogg": audio["clarinet"],
    }))  # fmt: skip
    (rcc / "memory.rcc").write_bytes(make_rcc({
        "gcompris/src/activities/memory/resource/LRFrogsInPondDuringStormLACut.ogg": audio["frogs"],
        "gcompris/src/activities/chronos/resource/1.ogg": audio["digit"],
    }))  # fmt: skip
    qm = tree / "usr/share/gcompris-qt/translations"
    qm.mkdir(parents=True)
    (qm / "gcompris_fr.qm").write_bytes(make_qm([("board1", "Horse", "Le cheval")]))
    write_copyright(tree, "gcompris-qt-data")
    fake_apt("gcompris-qt-data", tree)
    items = {
        Path(k).stem: i for k, i in _by_key("gcompris_captions", CorpusContext(Path("."))).items()
    }
    assert set(items) == {"horse", "clarinet", "LRFrogsInPondDuringStormLACut"}  # "1" has no word
    assert items["horse"].captions == (
        Caption("Horse", "en", "human"),
        Caption("The horse goes 'neigh'.", "en", "human"),
        Caption("Le cheval", "fr", "human"),
    )
    assert items["clarinet"].captions == (Caption("clarinet", "en", "human"),)
    assert items["LRFrogsInPondDuringStormLACut"].captions == (
        Caption("frogs in pond during storm", "en", "template"),
    )
    assert items["horse"].path.read_bytes() == audio["horse"]  # the member's exact bytes
    assert items["horse"].origin.endswith(
        "farm.rcc:gcompris/src/activities/farm/resource/horse.ogg"
    )


def test_sfx_packs_plain_files_and_zip_members(tmp_path: Path, fake_apt, monkeypatch) -> None:
    tree = tmp_path / "sp"
    samples = tree / "usr/share/sonic-pi/samples"
    write_audio(samples / "bd_boom.wav", 1)
    write_audio(samples / "ambi_glass_rub.wav", 2)
    write_audio(samples / "bd_boom_copy.wav", 1)  # same bytes as bd_boom: listed once
    write_audio(samples / "music/theme.wav", 3)  # excluded
    write_audio(tree / "etc/samples/special_rain2.ogg", 4)
    write_copyright(tree, "pack-a")
    fake_apt("pack-a", tree)
    zipped = tmp_path / "z"
    archive = zipped / "usr/share/games/z/base.wz"
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(write_audio(tmp_path / "w" / "lrgexpl.ogg", 5), "audio/sfx/explons/lrgexpl.ogg")
        zf.write(write_audio(tmp_path / "w" / "pcv379.ogg", 6), "audio/sfx/misc/pcv379.ogg")
    write_copyright(zipped, "pack-b")
    fake_apt("pack-b", zipped)
    packs = (
        sfx_packs.SfxPack("pack-a", include=("*.wav", "*.ogg"), exclude=("*/music/*",)),
        sfx_packs.SfxPack(
            "pack-b", archive="usr/share/games/z/base.wz", include=("audio/sfx/*",),
            names={"lrgexpl": "large explosion"}, only_named=True,
        ),
    )  # fmt: skip
    monkeypatch.setattr(sfx_packs.SfxPackCaptions, "packs", packs)
    items = list(SOURCES.get("sfx_pack_captions")().items(CorpusContext(Path("."))))
    got = {Path(i.key).name: (i.captions[0].text, i.licence) for i in items}
    assert got == {
        "ambi_glass_rub.wav": ("ambient glass rub", "GPL-2"),
        "bd_boom.wav": ("bass drum boom", "GPL-2"),
        "special_rain2.ogg": ("special rain", "CC0"),
        "lrgexpl.ogg": ("large explosion", "GPL-2"),
    }
    assert all(i.captions[0].kind == "template" for i in items)


def test_build_writes_heldout_captions_and_licences(tuxpaint: Path, tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    ctx = CorpusContext(data_dir=tmp_path)
    summary = build_corpus(out, ["tuxpaint_captions", "tuxpaint_spoken"], ctx, progress=False)
    train = read_captions(out)
    held = read_captions(out, split="heldout")
    files = {c.file for c in train} | {c.file for c in held}
    assert len(files) == 8 and summary.total_files + summary.heldout_files == 8
    assert {c.group for c in train}.isdisjoint({c.group for c in held})
    lic = (out / "licences.csv").read_text().splitlines()
    assert lic[0] == "file,source,licence" and len(lic) == 9
