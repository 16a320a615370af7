"""Constants and checks shared by the task tests (a uniquely named module, not conftest, so
imports resolve the same way whichever conftest pytest loaded last)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from optional_extras import spatial_missing

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("ECHOIC_DATA", REPO / ".." / "shared" / "data")).resolve()
SOUNDFONT_TASKS = ("soundfont_instrument", "soundfont_pitch")
SYLLABLE_TASKS = ("syllables_fsdd", "syllables_librispeech")  # need pocketsphinx to align
SPATIAL_TASKS = ("localisation_binaural", "localisation_foa", "rt60_binaural")  # spatial extra
SHEET_TASKS = ("sheet_snippets",)  # sheet extra + fluidsynth; no shared data
FONTS = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
)
SAMPLE_RATE = 16000


def have_data() -> bool:
    return (DATA / "esc50" / "meta.csv").is_file()


def have_fluidsynth() -> bool:
    return shutil.which("fluidsynth") is not None and all(f.is_file() for f in FONTS)


def have_pocketsphinx() -> bool:
    import importlib.util

    return importlib.util.find_spec("pocketsphinx") is not None


def buildable_tasks() -> list[str]:
    from echoic.tasks.writer import task_names

    names = []
    for name in task_names():
        if name in SOUNDFONT_TASKS and not have_fluidsynth():
            continue
        if name in SYLLABLE_TASKS and not have_pocketsphinx():
            if os.environ.get("ECHOIC_REQUIRE_SYLLABLES") != "1":  # else: the build fails
                continue
        if name in SPATIAL_TASKS and spatial_missing():
            continue
        if name in SHEET_TASKS:
            from optional_extras import sheet_missing

            if not sheet_missing():  # ECHOIC_REQUIRE_SHEET=1: test_sheet_snippets fails instead
                names.append(name)
            continue
        if name not in SOUNDFONT_TASKS and not have_data():
            continue
        names.append(name)
    return names
