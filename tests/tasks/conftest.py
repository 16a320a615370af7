"""Fixtures for the task builders: the data folder and one small build shared by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from tasks_helpers import DATA, SAMPLE_RATE, buildable_tasks, have_data


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not have_data():
        pytest.skip(f"real-audio data not found at {DATA} (set ECHOIC_DATA)")
    return DATA


class BuiltTasks(dict):
    """task name → directory; asking for a task that could not be built here skips the test."""

    def __missing__(self, name: str) -> Path:
        pytest.skip(
            f"real-audio data not found or fluidsynth missing: task {name!r} not buildable here "
            "(needs shared/data or fluidsynth + soundfonts)"
        )


@pytest.fixture(scope="session")
def small_build(tmp_path_factory: pytest.TempPathFactory) -> BuiltTasks:
    """Every buildable task in small mode at 16 kHz: task name → task directory."""
    from echoic.tasks.writer import build_tasks

    names = buildable_tasks()
    if not names:
        pytest.skip(f"real-audio data not found at {DATA}, nor fluidsynth + soundfonts")
    out = tmp_path_factory.mktemp("tasks_small")
    results = build_tasks(names, out, DATA, SAMPLE_RATE, "small", progress=False)
    return BuiltTasks({r.name: r.directory for r in results})
