"""Training checkpoints that survive faults: atomic durable writes, a save on SIGTERM, and a resume
that steps over a damaged file.

- :class:`AtomicCheckpointIO` writes each checkpoint to a temporary file beside the target,
  flushes it to disk and renames it into place: a crash, a kill -9 or a power cut mid-write never
  leaves a truncated checkpoint, and a full disk raises :class:`~echoic.errors.DiskFullError` with
  the earlier checkpoints untouched.
- :class:`CheckpointOnSigterm`: Lightning's own SIGTERM handling (its signal connector) stops the
  loop at the end of the current optimiser step with ``SIGTERMException``; this callback writes
  ``last.ckpt`` at that step, so a resumed run redoes nothing.
- :func:`find_resume` (``--resume auto``) tries ``last.ckpt`` and then the step checkpoints,
  newest first, and moves aside (``<name>.corrupt``) any that does not load, with a warning.

``tests/faults/`` kills, fills the disk and truncates checkpoints to check all of this.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from echoic.errors import CheckpointError, DiskFullError, is_disk_full

__all__ = [
    "LAST",
    "AtomicCheckpointIO",
    "CheckpointOnSigterm",
    "clean_stale_tmp",
    "find_resume",
    "loads",
]

log = logging.getLogger(__name__)
LAST = "last.ckpt"
_STEP = re.compile(r"step=(\d+)(?:-v\d+)?\.ckpt$")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Temporary file → ``fsync`` → rename: the checkpoint on disk is always a whole one."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(checkpoint, fh)
                fh.flush()
                os.fsync(fh.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600 files
            os.replace(tmp, target)
            folder = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
        except (OSError, RuntimeError) as err:
            # torch.save reports a failed write as RuntimeError naming the cause; look through it
            if is_disk_full(err) or "No space left on device" in str(err):
                raise DiskFullError(
                    f"no space left on the device while writing the checkpoint {target}; the "
                    f"earlier checkpoints in {target.parent} are intact. Free some space and "
                    "resume with `echoic pretrain --config ... --resume auto`."
                ) from err
            raise
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


class CheckpointOnSigterm(Callback):
    """Writes ``path`` (``last.ckpt``) when Lightning stops a fit on SIGTERM.

    Lightning raises ``SIGTERMException`` at the end of the optimiser step during which the signal
    came (the model, optimiser, data position and RNG states agree there) and calls every
    callback's ``on_exception``; on every rank, so that a sharded save can gather."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException) and trainer.global_step > 0:
            trainer.save_checkpoint(self.path)
            if trainer.is_global_zero:
                log.warning(
                    "SIGTERM: stopped after step %d and saved %s", trainer.global_step, self.path
                )


def clean_stale_tmp(folder: Path) -> None:
    """Remove the temporary files a killed run left in a checkpoint folder."""
    if folder.is_dir():
        for stale in folder.glob(".*.ckpt.*.tmp"):
            stale.unlink(missing_ok=True)


def loads(path: Path) -> str | None:
    """``None`` if ``path`` reads as a checkpoint (its structure and pickled state; the tensor
    bytes are memory-mapped, not read), else why not."""
    try:
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # a truncated zip, a bad pickle, an empty file, ...
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    return None


def _candidates(folder: Path) -> list[Path]:
    """``last.ckpt``, then ``step=N.ckpt`` by N, newest first."""
    steps = [
        (int(m.group(1)), p) for p in folder.glob("step=*.ckpt") if (m := _STEP.search(p.name))
    ]
    found = [folder / LAST] if (folder / LAST).is_file() else []
    return found + [p for _, p in sorted(steps, reverse=True)]


def find_resume(output_dir: str | os.PathLike[str], resume: str | None) -> str | None:
    """``None`` → fresh run; ``"auto"`` → the newest checkpoint under ``output_dir/checkpoints``
    that loads (``None`` if there is none: a fresh run); else that path, which must load."""
    if resume is None:
        return None
    if resume != "auto":
        path = Path(resume)
        if not path.is_file():
            raise FileNotFoundError(f"--resume {resume}: no such checkpoint file.")
        problem = loads(path)
        if problem is not None:
            raise CheckpointError(
                f"--resume {resume}: the file does not load as a checkpoint ({problem}); it may "
                "have been cut short by a crash. Pass an earlier checkpoint, or --resume auto to "
                "take the newest one that loads."
            )
        return resume
    folder = Path(output_dir) / "checkpoints"
    for path in _candidates(folder):
        problem = loads(path)
        if problem is None:
            return str(path)
        if getattr(rank_zero_only, "rank", 0) == 0:  # every rank skips it; one moves it
            aside = path.with_name(path.name + ".corrupt")
            with contextlib.suppress(FileNotFoundError):
                os.replace(path, aside)
            log.warning("%s does not load (%s); moved it to %s", path, problem, aside.name)
    return None
