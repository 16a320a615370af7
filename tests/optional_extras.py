"""Checks of optional extras that several test folders share (importable as ``optional_extras``:
pytest puts ``tests/`` on the path with the root conftest)."""

from __future__ import annotations

import importlib.util


def spatial_missing() -> str:
    """Why the ``spatial`` extra (pyproject.toml) cannot render here; '' when it can."""
    for module in ("pyroomacoustics", "h5py", "spatialaudiometrics"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
    try:
        import slab  # noqa: F401
    except (ImportError, OSError) as err:  # OSError: no PortAudio (Debian libportaudio2)
        return f"slab does not import ({err}); needs Debian libportaudio2"
    return ""
