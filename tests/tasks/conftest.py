"""Fixtures for the task builders: the data folder and one small build shared by the tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("ECHOIC_DATA", REPO / ".." / "shared" / "data")).resolve()
SOUNDFONT_TASKS = ("soundfont_instrument", "soundfont_pitch")
FONTS = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
)
SAMPLE_RATE = 16000


def have_data() -> bool:
    return (DATA / "esc50" / "meta.csv").is_file()


def have_fluidsynth() -> bool:
    return shutil.which("fluidsynth") is not None and all(f.is_file() for f in FONTS)


def buildable_tasks() -> list[str]:
    from echoic.tasks.writer import task_names

    names = []
    for name in task_names():
        if name in SOUNDFONT_TASKS and not have_fluidsynth():
            continue
        if name not in SOUNDFONT_TASKS and not have_data():
            continue
        names.append(name)
    return names


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not have_data():
        pytest.skip(f"real-audio data not found at {DATA} (set ECHOIC_DATA)")
    return DATA


class BuiltTasks(dict):
    """task name → directory; asking for a task that could not be built here skips the test."""

    def __missing__(self, name: str) -> Path:
        pytest.skip(
            f"task {name!r} not buildable here (needs shared/data or fluidsynth + soundfonts)"
        )


@pytest.fixture(scope="session")
def small_build(tmp_path_factory: pytest.TempPathFactory) -> BuiltTasks:
    """Every buildable task in small mode at 16 kHz: task name → task directory."""
    from echoic.tasks.writer import build_tasks

    names = buildable_tasks()
    if not names:
        pytest.skip("neither shared/data nor fluidsynth + soundfonts are available")
    out = tmp_path_factory.mktemp("tasks_small")
    results = build_tasks(names, out, DATA, SAMPLE_RATE, "small", progress=False)
    return BuiltTasks({r.name: r.directory for r in results})
