"""``music21_captions``: captions composed from the render recipe, the draws shared with ``music21``,
the held-out groups, and a build of two long renders (one held out with its composer)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import soundfile as sf

from echoic.corpus import SOURCES, CorpusContext, build_corpus
from echoic.corpus.sources.music21_captions import (
    HELDOUT_FRACTION,
    Music21Captions,
    _key_words,
    ensemble,
    piece_captions,
    tempo_word,
)
from echoic.corpus.sources.music21_fluidsynth import (
    COMPOSERS,
    MELODIC_PROGRAMS,
    Recipe,
    _rng,
    draw_recipe,
)
from echoic.data.captions import Caption, in_heldout, read_captions
from echoic.tasks.soundfont import FLUIDR3

needs_render = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not FLUIDR3.is_file(),
    reason="fluidsynth + fluid-soundfont-gm not installed (make apt)",
)


def test_captions_by_hand() -> None:
    recipe = Recipe(bpm=72, programs=(40, 73, 40, 68), reverb=True, peak=0.5)
    assert piece_captions("palestrina", recipe, "G major", "3/2") == (
        Caption(
            "music by Palestrina for two violins, a flute and an oboe, slow tempo (72 bpm), "
            "in a reverberant hall",
            "en",
            "generated",
        ),
        Caption(
            "a slow piece in G major in 3/2 time for four parts, in a reverberant hall",
            "en",
            "generated",
        ),
        Caption(
            "two violins, a flute and an oboe playing a slow piece by Palestrina",
            "en",
            "generated",
        ),
    )
    dry = piece_captions("cpebach", Recipe(120, (0,), False, 0.5))  # no key, no metre found
    assert [c.text for c in dry] == [
        "music by C. P. E. Bach for an acoustic grand piano, fast tempo (120 bpm), dry",
        "a fast piece for one part, dry",
        "an acoustic grand piano playing a fast piece by C. P. E. Bach",
    ]
    assert (
        ensemble((47, 47, 14, 65, 65, 65))
        == "two timpani parts, tubular bells and three alto saxes"
    )
    assert [tempo_word(b) for b in (60, 79, 80, 109, 110, 140)] == [
        "slow", "slow", "moderate", "moderate", "fast", "fast",
    ]  # fmt: skip
    assert _key_words("B-", "minor") == "B-flat minor"
    assert _key_words("C#", "major") == "C-sharp major"


def test_the_draws_keep_the_music21_sources_order() -> None:
    """tempo, then one program per part, then reverb, then peak: what render_piece always drew
    (the music21 source's files, echoic-tiny's corpus, must not change)."""
    rng = _rng("bach/bwv66.6", 0)
    bpm = int(rng.integers(60, 141))
    programs = tuple(int(rng.choice(MELODIC_PROGRAMS)) for _ in range(4))
    reverb, peak = bool(rng.random() < 0.5), float(rng.uniform(0.3, 0.9))
    assert draw_recipe("bach/bwv66.6", 0, 4) == Recipe(bpm, programs, reverb, peak)


def test_held_out_groups_are_pieces_or_small_composers() -> None:
    source = Music21Captions()
    assert source.group("bach", "bach/bwv66.6") == "music21_captions/bach/bwv66.6"
    assert source.group("mozart", "mozart/k80/movement1") == "music21_captions/composer/mozart"
    assert 0 < source.heldout_fraction == HELDOUT_FRACTION < 1


def test_pieces_take_composers_in_turn_one_score_file_each(tmp_path: Path) -> None:
    pytest.importorskip("music21")
    pieces = Music21Captions().pieces(CorpusContext(tmp_path))
    keys = [key for _, key, _ in pieces]
    stems = [k.rsplit(".", 1)[0] for k in keys]
    assert len(stems) == len(set(stems)) > 1000  # a piece in .mxl and .krn is one clip
    assert not any(k.endswith(".rntxt") for k in keys)  # analyses, not scores
    first = [composer for composer, _, _ in pieces[:10]]
    assert len(set(first)) == 10  # every composer before any comes back
    again = Music21Captions().pieces(CorpusContext(tmp_path))
    assert again == pieces  # seeded
    assert Music21Captions().pieces(CorpusContext(tmp_path, seed=1)) != pieces


def test_the_sheet_tasks_held_out_composers_are_never_rendered() -> None:
    # sheet_snippets holds out Mozart and Haydn (test) and the Schumanns (valid): their scores
    # would be the task's held-out music (the leakage check flagged 18 renders by origin)
    assert {"mozart", "haydn"} <= set(COMPOSERS)
    assert not {"mozart", "haydn", "schumann_robert", "schumann_clara"} & set(
        Music21Captions.composers
    )
    assert "bach" in Music21Captions.composers


@SOURCES.register("test_music21_captions")
class TwoComposers(Music21Captions):
    """Scott Joplin (one score, held out with its composer) and Mozart (kept for training)."""

    name = "test_music21_captions"
    description = "music21_captions over two composers (test)"
    composers: ClassVar[tuple[str, ...]] = ("joplin", "mozart")


@needs_render
def test_a_build_writes_long_captioned_renders_and_the_held_out_composer(tmp_path: Path) -> None:
    pytest.importorskip("music21")
    assert in_heldout("music21_captions/composer/joplin", HELDOUT_FRACTION)
    assert not in_heldout("music21_captions/composer/mozart", HELDOUT_FRACTION)
    out = tmp_path / "corpus"
    ctx = CorpusContext(data_dir=tmp_path, max_hours=0.03)  # 108 s: two renders of 60-90 s
    summary = build_corpus(out, ["test_music21_captions"], ctx, progress=False)
    assert summary.failures == [] and summary.total_files == 1 and summary.heldout_files == 1
    (held,) = read_captions(out, split="heldout")
    (train,) = read_captions(out)
    assert held.group == "music21_captions/composer/joplin"
    assert train.group == "music21_captions/composer/mozart"
    for clip in (held, train):
        audio, rate = sf.read(clip.path)
        assert rate == 16000 and 60.0 <= len(audio) / rate <= 90.0
        assert 0.25 < np.max(np.abs(audio)) <= 0.91
        assert len(clip.captions) == 3
        assert {(c.lang, c.kind) for c in clip.captions} == {("en", "generated")}
    assert "by Scott Joplin" in held.captions[0].text
    assert "by Mozart" in train.captions[0].text
    with open(out / "heldout.csv", newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["origin"] == "music21:joplin/maple_leaf_rag.mxl"
    with open(out / "categories.csv", newline="") as fh:
        assert {r["category"] for r in csv.DictReader(fh)} == {"music"}
