"""File sha256: the same digest as hashlib over the whole file, and the cached one follows edits."""

from __future__ import annotations

import hashlib
from pathlib import Path

from echoic.data.hashing import cached_file_sha256, file_sha256


def test_digests_match_hashlib_and_a_changed_file_is_hashed_again(tmp_path: Path) -> None:
    path = tmp_path / "w.bin"
    data = bytes(range(256)) * 9000  # > 1 MiB: several blocks
    path.write_bytes(data)
    assert file_sha256(path) == cached_file_sha256(path) == hashlib.sha256(data).hexdigest()
    path.write_bytes(data + b"x")  # another size: the cache key changes
    assert cached_file_sha256(path) == hashlib.sha256(data + b"x").hexdigest()
