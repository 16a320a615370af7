"""Captions: the sidecar table, the held-out split, the name-cleaning rule, generated captions."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from echoic.corpus import SOURCES, CorpusContext, CorpusItem, CorpusSource, build_corpus
from echoic.corpus.names import template_caption
from echoic.corpus.sources.soundfont_captions import dynamic, note_captions, pitch_name
from echoic.data.captions import Caption, CaptionError, caption_pairs, in_heldout, read_captions


def _noise(seed: int) -> tuple[np.ndarray, int]:
    return (0.1 * np.random.default_rng(seed).standard_normal(1600)).astype(np.float32), 16000


ITEMS: dict[str, list[CorpusItem]] = {"items": []}


@SOURCES.register("test_captioned")
class Captioned(CorpusSource):
    name = "test_captioned"
    licence = "test"
    description = "captioned items planted by the test"
    heldout_fraction: ClassVar[float] = 0.3

    def items(self, ctx: CorpusContext) -> Iterator[CorpusItem]:
        yield from ITEMS["items"]


def _items(n: int) -> list[CorpusItem]:
    out = []
    for i in range(n):
        group = f"g{i // 2}"  # two clips per group: a sound and its spoken caption
        captions = (Caption(f"sound {i // 2}", "en", "human"), Caption(f"son {i}", "fr", "human"))
        out.append(
            CorpusItem(f"c{i}", render=lambda i=i: _noise(i), captions=captions, group=group)
        )
    return out


def test_heldout_split_is_a_documented_seeded_hash() -> None:
    groups = [f"tuxpaint/animals/{i}" for i in range(5000)]
    held = [g for g in groups if in_heldout(g, 0.2)]
    assert 0.18 < len(held) / len(groups) < 0.22
    assert held == [g for g in reversed(groups) if in_heldout(g, 0.2)][::-1]  # order-free
    # the rule as documented, computed here independently
    digest = hashlib.sha256(b"echoic-captions-v1:tuxpaint/animals/7").digest()
    assert in_heldout("tuxpaint/animals/7", 0.2) == (
        int.from_bytes(digest[:8], "big") < 0.2 * 2**64
    )
    assert not any(in_heldout(g, 0.0) for g in groups[:100])
    assert set(held) <= {g for g in groups if in_heldout(g, 0.5)}  # nested as the fraction grows
    with pytest.raises(CaptionError, match="fraction"):
        in_heldout("x", 1.0)


def test_build_and_read_captions_round_trip(tmp_path: Path) -> None:
    ITEMS["items"] = _items(40)
    out = tmp_path / "c"
    summary = build_corpus(out, ["test_captioned"], CorpusContext(tmp_path), progress=False)
    train, held = read_captions(out), read_captions(out, split="heldout")
    assert len(train) + len(held) == 40 and 0 < len(held) < 40
    assert summary.total_files == len(train) and summary.heldout_files == len(held)
    # held-out audio is not in the training manifest, and groups never straddle the split
    with open(out / "manifest.csv", newline="") as fh:
        manifest = {row["file"] for row in csv.DictReader(fh)}
    assert manifest == {c.file for c in train}
    assert {c.group for c in train}.isdisjoint({c.group for c in held})
    expected_held = {f"g{i}" for i in range(20) if in_heldout(f"g{i}", 0.3)}
    assert {c.group for c in held} == expected_held
    clip = next(c for c in train if c.file.endswith("/c4.flac"))
    assert clip.captions == (Caption("sound 2", "en", "human"), Caption("son 4", "fr", "human"))
    assert clip.path.is_file() and clip.duration_s == pytest.approx(0.1)
    assert [c.captions for c in read_captions(out, langs={"fr"}) if c.file == clip.file] == [
        (Caption("son 4", "fr", "human"),)
    ]
    pairs = list(caption_pairs([clip]))
    assert pairs == [(clip.path, "sound 2", "en", "human"), (clip.path, "son 4", "fr", "human")]
    stats = summary.sources["test_captioned"]
    assert stats["captions"] == {"human": 80} and stats["caption_langs"] == {"en": 40, "fr": 40}


def test_a_stale_captions_table_is_refused(tmp_path: Path) -> None:
    ITEMS["items"] = _items(6)
    out = tmp_path / "c"
    build_corpus(out, ["test_captioned"], CorpusContext(tmp_path), progress=False)
    with open(out / "captions.csv", "a", newline="") as fh:
        fh.write("audio/test_captioned/gone.flac,test_captioned,train,g9,x,en,human\n")
    with pytest.raises(CaptionError, match=r"gone\.flac"):
        read_captions(out)
    with pytest.raises(CaptionError, match="split"):
        read_captions(out, split="test")
    with pytest.raises(CaptionError, match="not one of"):
        Caption("a dog", "en", "invented")  # type: ignore[arg-type]


def test_audio_only_builds_write_no_sidecars(tmp_path: Path) -> None:
    ITEMS["items"] = _items(4)
    out = tmp_path / "c"
    build_corpus(out, ["test_captioned"], CorpusContext(tmp_path), progress=False)
    assert (out / "captions.csv").is_file()
    ITEMS["items"] = [CorpusItem("plain", render=lambda: _noise(99))]
    summary = build_corpus(out, ["test_captioned"], CorpusContext(tmp_path), progress=False)
    assert not (out / "captions.csv").exists() and not (out / "licences.csv").exists()
    header = (out / "manifest.csv").read_text().splitlines()[0]
    assert header == "file,source,duration_s,sample_rate,sha256,origin"
    assert "captions" not in summary.to_json()


@pytest.mark.parametrize(
    ("name", "context", "caption"),
    [
        ("LRFrogsInPondDuringStormLACut", (), "frogs in pond during storm"),
        ("LRTrain_slowing_down_01_LA_cut", (), "train slowing down"),
        ("bd_boom", (), "bass drum boom"),
        ("elec_hi_snare", (), "electronic high snare"),
        ("perc_snap2", (), "percussion snap"),
        ("horseman_attack1c", (), "horseman attack"),
        ("Washing-machine", (), "washing machine"),
        ("xylofon_son2", (), "xylophone sound"),
        ("rain", ("sounds", "rain"), "rain"),
        ("wolf", ("meadow",), "meadow wolf"),
        ("17", (), ""),
    ],
)
def test_name_cleaning_rule(name: str, context: tuple[str, ...], caption: str) -> None:
    assert template_caption(name, context) == caption


def test_generated_soundfont_captions() -> None:
    assert [pitch_name(n) for n in (21, 60, 61, 69, 108)] == ["A0", "C4", "C#4", "A4", "C8"]
    assert [dynamic(v) for v in (40, 41, 64, 100, 127)] == [
        "pianissimo", "piano", "mezzo-piano", "forte", "fortississimo",
    ]  # fmt: skip
    assert note_captions(42, 60, 96) == (
        Caption("a cello playing C4, forte", "en", "generated"),
        Caption("a single note on a cello (string family)", "en", "generated"),
    )
    assert note_captions(0, 45, 113)[0].text == "an acoustic grand piano playing A2, fortissimo"


def test_soundfont_captions_source_reads_the_task_train_split(tmp_path: Path) -> None:
    import json

    import soundfile as sf

    task = tmp_path / "tasks" / "soundfont_instrument-v1.0.0-full"
    (task / "16000" / "train").mkdir(parents=True)
    names = ["train_0000_p042_n060_v096.wav", "train_0001_p073_n081_v050.wav"]
    for i, name in enumerate(names):
        sf.write(task / "16000" / "train" / name, _noise(i)[0], 16000)
    rows = "\n".join(f"train,{n},FluidR3_GM.sf2#program{n[12:15]}" for n in names)
    (task / "sources.csv").write_text(f"split,file,sources\n{rows}\n")
    meta = {"task_name": "soundfont_instrument", "split_mode": "trainvaltest", "splits": []}
    (task / "task_metadata.json").write_text(json.dumps(meta))
    ctx = CorpusContext(tmp_path, tasks_dir=tmp_path / "tasks")
    items = list(SOURCES.get("soundfont_captions")().items(ctx))
    assert [i.captions[0].text for i in items] == [
        "a cello playing C4, forte",
        "a flute playing A5, piano",
    ]
    assert items[0].origin == "FluidR3_GM.sf2#program042"


def test_every_registered_source_declares_itself() -> None:
    for name, cls in SOURCES.items():
        assert cls.name == name and cls.licence and cls.description, name
        assert 0.0 <= cls.heldout_fraction < 1.0, name
