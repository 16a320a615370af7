"""Audio and text inside game data archives: Qt resource bundles (.rcc), Qt translations (.qm),
zip archives (.wz, .pk3, .zip), OpenTTD sound sets (.cat).

Members are extracted once into a cache folder beside the unpacked package and used in place, so
a corpus file keeps the archive member's exact bytes (no re-encoding).

Qt's binary formats are small and documented in Qt's sources (``rcc.cpp``, ``qtranslator.cpp``):

- ``.rcc``: magic ``qres``, version, then offsets of the tree, the data and the names. A tree
  entry is name offset (4 bytes), flags (2: 1 zlib, 2 directory, 4 zstd), then a directory's
  child count and first child (4 + 4) or a file's locale (2 + 2) and data offset (4); version 2
  and later add an 8-byte modification time. A name is its length (2), a hash (4) and UTF-16BE;
  a file's data is its size (4) and bytes (zlib data starts with the 4-byte unpacked size).
- ``.qm``: a 16-byte magic, then sections (tag 1 byte, length 4); section 0x69 holds messages,
  each a list of tagged fields: 3 translation (UTF-16BE), 6 source text, 7 context, 8 comment
  (UTF-8), 5 a 4-byte hash, 1 the end of the message.
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from echoic.corpus.base import CorpusError

__all__ = ["cat_files", "extract_members", "qm_translations", "rcc_files"]

RCC_MAGIC = b"qres"
QM_MAGIC = bytes.fromhex("3cb86418caef9c95cd211cbf60a1bddd")


def rcc_files(data: bytes) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """``(path, read)`` for every file in a Qt resource bundle; ``read()`` unpacks its bytes."""
    if data[:4] != RCC_MAGIC:
        raise CorpusError(f"not a Qt resource bundle: magic {data[:4]!r}, expected {RCC_MAGIC!r}")
    version, tree, payload, names = struct.unpack(">IIII", data[4:20])
    entry = 14 if version == 1 else 22

    def name(offset: int) -> str:
        (length,) = struct.unpack(">H", data[names + offset : names + offset + 2])
        start = names + offset + 6
        return data[start : start + 2 * length].decode("utf-16-be")

    def reader(offset: int, flags: int) -> Callable[[], bytes]:
        def read() -> bytes:
            (size,) = struct.unpack(">I", data[payload + offset : payload + offset + 4])
            blob = data[payload + offset + 4 : payload + offset + 4 + size]
            if flags & 4:
                raise CorpusError("zstd-compressed Qt resources are not supported")
            return zlib.decompress(blob[4:]) if flags & 1 else blob

        return read

    stack: list[tuple[int, str]] = [(0, "")]
    while stack:
        index, prefix = stack.pop()
        base = tree + index * entry
        name_offset, flags = struct.unpack(">IH", data[base : base + 6])
        path = f"{prefix}{name(name_offset)}" if index else ""
        if flags & 2:
            count, first = struct.unpack(">II", data[base + 6 : base + 14])
            folder = f"{path}/" if index else ""
            stack.extend((child, folder) for child in range(first + count - 1, first - 1, -1))
        else:
            (offset,) = struct.unpack(">I", data[base + 10 : base + 14])
            yield path, reader(offset, flags)


def cat_files(data: bytes) -> Iterator[tuple[str, str, bytes]]:
    """``(member name, description, WAV bytes)`` of an OpenTTD sound set (``.cat``): a table of
    ``(offset | 0x80000000, size)`` little-endian pairs (the first offset / 8 = the count), each
    entry a length byte, a NUL-ended description (title, author, licence) and ``size`` bytes of
    RIFF WAV. Members are named ``NNN.wav`` by position."""
    (first,) = struct.unpack("<I", data[:4])
    count = (first & 0x7FFFFFFF) // 8
    if count == 0 or count * 8 > len(data):
        raise CorpusError(f"not an OpenTTD .cat sound set: first offset {first:#x}")
    for index in range(count):
        offset, size = struct.unpack("<II", data[8 * index : 8 * index + 8])
        offset &= 0x7FFFFFFF
        length = data[offset]
        text = data[offset + 1 : offset + 1 + length].rstrip(b"\0").decode("utf-8", "replace")
        wav = data[offset + 1 + length : offset + 1 + length + size]
        if wav[:4] != b"RIFF":
            raise CorpusError(f".cat entry {index}: expected RIFF WAV data, found {wav[:4]!r}")
        yield f"{index:03d}.wav", text, wav


def qm_translations(data: bytes) -> dict[str, str]:
    """Source text → translation of a Qt ``.qm`` file (messages without a source text or with an
    empty translation are skipped; a source translated differently in two contexts keeps the
    first)."""
    if data[:16] != QM_MAGIC:
        raise CorpusError("not a Qt translation file (.qm): wrong magic")
    pos, messages = 16, b""
    while pos + 5 <= len(data):
        tag, length = data[pos], struct.unpack(">I", data[pos + 1 : pos + 5])[0]
        if tag == 0x69:
            messages = data[pos + 5 : pos + 5 + length]
        pos += 5 + length
    out: dict[str, str] = {}
    pos, source, translation = 0, "", ""
    while pos < len(messages):
        tag = messages[pos]
        pos += 1
        if tag == 1:  # end of message
            if source and translation:
                out.setdefault(source, translation)
            source, translation = "", ""
        elif tag == 5:
            pos += 4
        elif tag in (3, 6, 7, 8):
            (length,) = struct.unpack(">I", messages[pos : pos + 4])
            pos += 4
            if length == 0xFFFFFFFF:
                length = 0
            field = messages[pos : pos + length]
            pos += length
            if tag == 3 and not translation:
                translation = field.decode("utf-16-be", errors="replace")
            elif tag == 6:
                source = field.decode("utf-8", errors="replace")
        else:
            raise CorpusError(f"unknown .qm message field tag {tag} at byte {pos - 1}")
    return out


def extract_members(
    archive: Path, out: Path, keep: Callable[[str], bool]
) -> Iterator[tuple[str, Path]]:
    """Extract the members of a .rcc, .cat or zip archive (.wz, .pk3, .zip) for which ``keep(path)``
    holds into ``out`` (once; existing files are reused) and yield ``(member path, file)``."""
    data = archive.read_bytes() if archive.suffix in (".rcc", ".cat") else b""
    if data and archive.suffix == ".cat":
        members: Iterator[tuple[str, Callable[[], bytes]]] = (
            (name, (lambda w=wav: w))  # type: ignore[misc]
            for name, _, wav in cat_files(data)
        )
    elif data:
        members = rcc_files(data)
    else:
        with zipfile.ZipFile(archive) as zf:
            names = [i.filename for i in zf.infolist() if not i.is_dir()]

        def zip_members() -> Iterator[tuple[str, Callable[[], bytes]]]:
            with zipfile.ZipFile(archive) as zf:
                for member in names:
                    yield member, (lambda m=member: zf.read(m))  # type: ignore[misc]

        members = zip_members()
    for member, read in members:
        if not keep(member) or ".." in Path(member).parts:
            continue
        target = out / member
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".partial")
            tmp.write_bytes(read())
            os.replace(tmp, target)
        yield member, target
