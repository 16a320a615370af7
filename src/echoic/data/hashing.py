"""sha256 of files, read in 1 MiB blocks (no torch: the torch-free ``echoic models`` uses it)."""

from __future__ import annotations

import functools
import hashlib
import os

__all__ = ["cached_file_sha256", "file_sha256"]


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, read now (what a download check wants)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def cached_file_sha256(path: str | os.PathLike[str]) -> str:
    """:func:`file_sha256`, computed once per (absolute path, size, mtime) in a process (weights
    files hashed for identities and provenance, again and again)."""
    stat = os.stat(path)
    return _cached(os.path.abspath(path), stat.st_size, stat.st_mtime_ns)


@functools.cache
def _cached(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)
