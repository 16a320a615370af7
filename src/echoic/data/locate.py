"""Where the real-audio data sets live (``shared/data`` beside the repository, or ``$ECHOIC_DATA``)."""

from __future__ import annotations

import os
from pathlib import Path

from echoic.errors import EchoicError

ENV_VAR = "ECHOIC_DATA"


def shared_data_dir(required: bool = True) -> Path | None:
    """The data folder: ``$ECHOIC_DATA``, else ``../shared/data`` from the repo root or the CWD."""
    candidates: list[Path] = []
    if os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]))
    repo_root = Path(__file__).resolve().parents[3]
    candidates += [repo_root.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for path in candidates:
        if (path / "README.md").is_file() or (path.is_dir() and any(path.iterdir())):
            return path.resolve()
    if required:
        raise EchoicError(
            "real-audio data not found; expected it at "
            + " or ".join(str(c) for c in candidates)
            + f". Set {ENV_VAR}=/path/to/shared/data."
        )
    return None
