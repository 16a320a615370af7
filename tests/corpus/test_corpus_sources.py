"""Every registered corpus source runs here (on a small slice) and yields readable audio."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from echoic.corpus import SOURCES, CorpusContext, build_corpus, read_manifest
from echoic.tasks.soundfont import FLUIDR3


def test_gcompris_voices_lists_the_pretraining_only_set(shared_data: Path) -> None:
    items = list(SOURCES.get("gcompris_voices")().items(CorpusContext(shared_data)))
    assert len(items) == 8233
    assert all(i.path is not None and i.origin.startswith("gcompris_voices/") for i in items)
    assert items[0].path.is_file()


@pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not FLUIDR3.is_file(),
    reason="fluidsynth + fluid-soundfont-gm not installed (make apt)",
)
def test_music21_renders_real_scores_resumably(tmp_path: Path) -> None:
    pytest.importorskip("music21")
    ctx = CorpusContext(data_dir=tmp_path, max_hours=0.01)  # 36 s: the first piece only
    out = tmp_path / "corpus"
    summary = build_corpus(out, ["music21"], ctx, progress=False)
    rows = read_manifest(out)
    assert len(rows) == 1 and summary.failures == []
    flac = out / rows[0]["file"]
    audio, rate = sf.read(flac)
    assert rate == 16000 and 5.0 < audio.shape[0] / rate <= 60.0
    assert 0.25 < np.max(np.abs(audio)) <= 0.91  # normalised to the drawn peak
    # music, not noise or silence: most of the energy below 4 kHz
    power = np.abs(np.fft.rfft(audio[: rate * 4])) ** 2
    assert power[: len(power) // 2].sum() > 0.9 * power.sum()
    stamp = flac.stat().st_mtime_ns
    build_corpus(out, ["music21"], ctx, progress=False)
    assert flac.stat().st_mtime_ns == stamp  # resumed: not rendered again
    assert rows[0]["origin"].startswith("music21:")
