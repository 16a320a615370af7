"""Fixtures of the evaluate tests: synthetic HEAR tasks (see evaluate_helpers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from evaluate_helpers import write_task


@pytest.fixture
def scene_task(tmp_path: Path) -> Path:
    return write_task(tmp_path / "tasks", "tones", event=False)


@pytest.fixture
def event_task(tmp_path: Path) -> Path:
    return write_task(tmp_path / "tasks", "bursts", event=True, seconds=2.0, per_class=3)
