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


def sheet_missing() -> str:
    """Why the ``sheet`` extra (music21, verovio, cairosvg) or its renderer (Debian fluidsynth +
    fluid-soundfont-gm) is unusable here; '' when ``sheet_snippets`` can be built."""
    import shutil
    from pathlib import Path

    for module in ("music21", "verovio", "cairosvg"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
    try:
        import cairosvg  # noqa: F401
    except OSError as err:  # no libcairo2
        return f"cairosvg does not load ({err}); needs Debian libcairo2"
    if (
        shutil.which("fluidsynth") is None
        or not Path("/usr/share/sounds/sf2/FluidR3_GM.sf2").is_file()
    ):
        return "fluidsynth or FluidR3_GM.sf2 is missing (apt-get install fluidsynth fluid-soundfont-gm)"
    return ""
