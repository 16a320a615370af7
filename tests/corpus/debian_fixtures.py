"""Tiny Debian packages built in the test (``dpkg-deb --build``) and a fake ``apt-get``.

``fake_apt`` serves packages made from trees written by the test: ``apt-cache show`` answers with
their real size and sha256, ``apt-get download`` copies the .deb. Also small writers of the Qt
resource (.rcc) and translation (.qm) formats, written from Qt's format description
independently of the reader under test.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from echoic.corpus import debian

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: {name}

Files: *
Copyright: 2020 Somebody
License: GPL-2

Files: etc/samples/special_*.ogg
Copyright: 2021 Freesounder
Source: http://freesound.org/people/someone/sounds/123456/
License: CC0

License: GPL-2
 The GPL, version 2.
"""


def write_audio(path: Path, seed: int, seconds: float = 0.25) -> Path:
    """A short, distinct noise clip (ogg or wav by suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    x = 0.1 * np.random.default_rng(seed).standard_normal(int(16000 * seconds))
    fmt = "OGG" if path.suffix == ".ogg" else "WAV"
    sf.write(path, x.astype(np.float32), 16000, format=fmt)
    return path


def write_copyright(tree: Path, name: str, text: str | None = None) -> None:
    doc = tree / "usr" / "share" / "doc" / name
    doc.mkdir(parents=True, exist_ok=True)
    (doc / "copyright").write_text(text if text is not None else COPYRIGHT.format(name=name))


@pytest.fixture
def fake_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, Path], Path]:
    """``publish(name, tree)`` makes ``tree`` the Debian package ``name`` (version 1.0-1)."""
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb not found (a Debian tool)")
    monkeypatch.setenv("ECHOIC_DEBIAN_CACHE", str(tmp_path / "debian-cache"))
    debs: dict[str, Path] = {}
    downloads: list[str] = []

    def publish(name: str, tree: Path) -> Path:
        control = tree / "DEBIAN" / "control"
        control.parent.mkdir(parents=True, exist_ok=True)
        control.write_text(
            f"Package: {name}\nVersion: 1.0-1\nArchitecture: all\nMaintainer: T <t@t>\n"
            f"Description: test package\n"
        )
        deb = tmp_path / "pool" / f"{name}_1.0-1_all.deb"
        deb.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(deb)],
            check=True,
            capture_output=True,
        )
        debs[name] = deb
        return deb

    def show(name: str) -> str:
        deb = debs[name]
        sha = hashlib.sha256(deb.read_bytes()).hexdigest()
        return (
            f"Package: {name}\nVersion: 1.0-1\nSize: {deb.stat().st_size}\nSHA256: {sha}\n"
            f"Filename: pool/main/x/{deb.name}\n\n"
        )

    def download(name: str, folder: Path) -> None:
        downloads.append(name)
        shutil.copy(debs[name], folder / debs[name].name)

    monkeypatch.setattr(debian, "_apt_show", show)
    monkeypatch.setattr(debian, "_apt_download", download)
    publish.downloads = downloads  # type: ignore[attr-defined]
    return publish


def _rcc_name(name: str) -> bytes:
    encoded = name.encode("utf-16-be")
    return struct.pack(">HI", len(name), 0) + encoded


def make_rcc(files: dict[str, bytes], compress: frozenset[str] = frozenset()) -> bytes:
    """A version-3 Qt resource bundle holding ``files`` (``a/b/c.wav`` paths)."""
    tree: dict = {}
    for path, data in files.items():
        node = tree
        *folders, leaf = path.split("/")
        for folder in folders:
            node = node.setdefault(folder, {})
        node[leaf] = data
    names, payload, entries = b"", b"", []
    # breadth-first layout: every directory's children are consecutive entries
    queue: list[tuple[str, dict | bytes, str]] = [("", tree, "")]
    order: list[tuple[str, dict | bytes, str]] = []
    while queue:
        item = queue.pop(0)
        order.append(item)
        if isinstance(item[1], dict):
            for child in sorted(item[1]):
                queue.append((child, item[1][child], f"{item[2]}/{child}".strip("/")))
    index = {id(node): i for i, (_, node, _) in enumerate(order)}
    for name, node, path in order:
        name_offset = len(names)
        names += _rcc_name(name)
        if isinstance(node, dict):
            first = index[id(node[sorted(node)[0]])] if node else 0
            entries.append(struct.pack(">IHII", name_offset, 2, len(node), first) + bytes(8))
        else:
            blob = node
            flags = 0
            if path in compress:
                blob, flags = struct.pack(">I", len(node)) + zlib.compress(node), 1
            entries.append(struct.pack(">IHHHI", name_offset, flags, 0, 0, len(payload)) + bytes(8))
            payload += struct.pack(">I", len(blob)) + blob
    header_size = 24
    tree_offset = header_size
    body = b"".join(entries)
    data_offset = tree_offset + len(body)
    names_offset = data_offset + len(payload)
    header = b"qres" + struct.pack(">IIIII", 3, tree_offset, data_offset, names_offset, 0)
    return header + body + payload + names


def make_qm(pairs: list[tuple[str, str, str]]) -> bytes:
    """A Qt .qm translation file with ``(context, source, translation)`` messages."""
    messages = b""
    for context, source, translation in pairs:
        tr = translation.encode("utf-16-be")
        messages += b"\x03" + struct.pack(">I", len(tr)) + tr
        messages += b"\x08" + struct.pack(">I", 0)
        src = source.encode()
        messages += b"\x06" + struct.pack(">I", len(src)) + src
        ctx = context.encode()
        messages += b"\x07" + struct.pack(">I", len(ctx)) + ctx
        messages += b"\x01"
    magic = bytes.fromhex("3cb86418caef9c95cd211cbf60a1bddd")
    return magic + b"\x69" + struct.pack(">I", len(messages)) + messages
