"""Exceptions that carry what was expected, what was found, and how to fix it."""

from __future__ import annotations


class EchoicError(Exception):
    """Base class of echoic's own errors."""


class AudioError(EchoicError):
    """A file could not be turned into audio. ``path`` and ``cause`` say which file and why."""

    def __init__(self, path: str, cause: str, fix: str = "") -> None:
        self.path = str(path)
        self.cause = cause
        self.fix = fix
        msg = f"{self.path}: {cause}"
        if fix:
            msg += f" ({fix})"
        super().__init__(msg)


class ConfigError(EchoicError, ValueError):
    """A configuration did not match what the code expects."""


class CheckpointError(EchoicError):
    """A model directory is missing pieces, is from an unknown format version, or does not fit."""


class DiskFullError(EchoicError):
    """A write failed for lack of space (ENOSPC / EDQUOT); what was finished before stays valid.

    ``is_disk_full(err)`` says whether an ``OSError`` is one."""


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` is an ``OSError`` saying the disk or the quota is full."""
    import errno

    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)
