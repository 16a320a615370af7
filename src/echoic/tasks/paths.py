"""Where the real-audio data sets live: ``--data``, else ``$ECHOIC_DATA``, else ``../shared/data``."""

from __future__ import annotations

import os
from pathlib import Path

import echoic
from echoic.data.locate import ENV_VAR as DATA_ENV
from echoic.data.locate import shared_data_dir
from echoic.tasks.base import TaskDataError


def repo_root() -> Path:
    """The checkout holding ``src/echoic`` (``src/echoic/__init__.py`` → two folders up)."""
    return Path(echoic.__file__).resolve().parents[2]


def default_data_dir() -> Path:
    """``$ECHOIC_DATA`` if set, else the ``shared/data`` folder beside the repository root."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    found = shared_data_dir(required=False)
    return found if found is not None else repo_root().parent / "shared" / "data"


def resolve_data_dir(data: str | os.PathLike[str] | None = None) -> Path:
    """The data directory to read, checked to exist; raises :class:`TaskDataError` otherwise."""
    path = Path(data) if data is not None else default_data_dir()
    if not path.is_dir():
        how = "--data" if data is not None else f"${DATA_ENV} or the default beside the repo"
        raise TaskDataError(
            f"data directory {path} (from {how}) does not exist; expected a folder with one "
            f"sub-folder per data set (esc50/, fsdd/, ... each with meta.csv). Pass --data DIR "
            f"or set {DATA_ENV}"
        )
    return path.resolve()
