"""The names a pickled torch checkpoint holds, read from its opcodes without unpickling it.

Format detection must stay cheap and must never run a pickle: the key names of a state dict (and
the short strings of a config) are string constants in the pickle stream, which
``pickletools.genops`` lists without executing anything or reading any tensor. Zip checkpoints
(``torch.save`` since PyTorch 1.6) keep that stream in ``<archive>/data.pkl``; the older format
starts the file with a few pickles (magic number, protocol, system info, then the object).
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

__all__ = ["CHECKPOINT_SUFFIXES", "checkpoint_file", "holds_suffixes", "pickled_names"]

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".tar")
"""File names torch checkpoints are usually saved under."""
MAX_STRING = 200


def _strings(stream: IO[bytes], pickles: int, limit: int) -> set[str]:
    names: set[str] = set()
    for _ in range(pickles):
        for opcode, arg, _position in pickletools.genops(stream):
            if "UNICODE" in opcode.name and isinstance(arg, str) and len(arg) < MAX_STRING:
                names.add(arg)
                if len(names) >= limit:
                    return names
            if opcode.name == "STOP":
                break
    return names


def pickled_names(path: Path, limit: int = 1 << 16) -> set[str]:
    """Short strings (dict keys, config values) in the pickle of the torch checkpoint ``path``;
    empty when it is not one (or is malformed). Nothing is unpickled."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                member = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
                if member is None:
                    return set()
                return _strings(io.BytesIO(archive.read(member)), 1, limit)
        with open(path, "rb") as handle:  # legacy format: magic, protocol, sys info, object
            if handle.read(2) != b"\x80\x02":
                return set()
            handle.seek(0)
            return _strings(handle, 4, limit)
    except Exception:  # genops raises several kinds on a malformed stream: not a checkpoint
        return set()


def holds_suffixes(names: set[str], markers: Iterable[str]) -> bool:
    """Whether every marker is one of ``names`` or the last dotted part(s) of one (a state dict's
    key behind any prefix: ``"pos_embed"`` matches ``"model.teacher.encoder.pos_embed"``)."""
    return all(any(n == m or n.endswith("." + m) for n in names) for m in markers)


def checkpoint_file(path: Path) -> Path | None:
    """The checkpoint file of ``path``: the file itself (a torch checkpoint suffix), or a folder's
    only such file; None otherwise."""
    if path.is_file():
        return path if path.suffix in CHECKPOINT_SUFFIXES else None
    if not path.is_dir():
        return None
    found = [p for p in sorted(path.iterdir()) if p.suffix in CHECKPOINT_SUFFIXES and p.is_file()]
    return found[0] if len(found) == 1 else None
