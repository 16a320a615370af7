"""Debian data packages as corpus sources: download (no install), verify, unpack, licence per file.

``unpacked(name)`` runs ``apt-get download NAME`` into the cache, checks the file's size and
sha256 against ``apt-cache show``, unpacks it with ``dpkg-deb -x`` (nothing is installed, no
maintainer script runs) and records what it did in ``<cache>/<name>/package.json``; later calls
return the unpacked tree at once. The cache is ``$ECHOIC_DEBIAN_CACHE``, else
``<echoic cache>/debian`` (``~/.cache/echoic/debian``). A package bigger than ``max_mb`` is refused
before anything is downloaded.

:class:`CopyrightIndex` reads the package's machine-readable ``debian/copyright`` (DEP-5, parsed by
python-debian) and gives each installed file the licence of the most specific ``Files:`` pattern
that matches the end of its path (the patterns name source-tree paths such as
``etc/samples/*``; installed paths differ in their leading folders).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

from echoic.corpus.base import CorpusContext, CorpusError, CorpusSource
from echoic.data.captions import Caption
from echoic.data.hashing import file_sha256
from echoic.hub import echoic_cache_dir

__all__ = [
    "CopyrightIndex",
    "DebianSource",
    "PackageInfo",
    "debian_cache",
    "freesound_ids",
    "locale_tag",
    "package_info",
    "tools_missing",
    "unique_by_content",
    "unpacked",
]

CACHE_ENV = "ECHOIC_DEBIAN_CACHE"
DEFAULT_MAX_MB = 300.0


def debian_cache() -> Path:
    """``$ECHOIC_DEBIAN_CACHE``, else ``<echoic cache>/debian``."""
    root = os.environ.get(CACHE_ENV)
    return Path(root).expanduser() if root else echoic_cache_dir() / "debian"


def tools_missing() -> str | None:
    """None when apt-get, apt-cache and dpkg-deb are on PATH, else what to do."""
    missing = [t for t in ("apt-get", "apt-cache", "dpkg-deb") if shutil.which(t) is None]
    if missing:
        return f"needs a Debian system ({', '.join(missing)} not found on PATH)"
    try:
        import debian.copyright  # noqa: F401
    except ModuleNotFoundError:
        return "the python-debian package is not installed: pip install 'echoic[corpus]'"
    return None


@dataclass(frozen=True)
class PackageInfo:
    """What ``apt-cache show`` says of the candidate version of a package."""

    name: str
    version: str
    size: int
    sha256: str
    filename: str


def _apt_show(name: str) -> str:
    """``apt-cache show --no-all-versions NAME`` (tests replace this)."""
    done = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", name], capture_output=True, text=True
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise CorpusError(
            f"Debian package {name!r} not found by apt-cache ({done.stderr.strip()[-200:]}); "
            f"run `apt-get update` first, or check the name with `apt-cache search {name}`"
        )
    return done.stdout


def _apt_download(name: str, folder: Path) -> None:
    """``apt-get download NAME`` in ``folder`` (tests replace this)."""
    done = subprocess.run(["apt-get", "download", name], cwd=folder, capture_output=True, text=True)
    if done.returncode != 0:
        raise CorpusError(f"apt-get download {name} failed: {done.stderr.strip()[-300:]}")


def package_info(name: str) -> PackageInfo:
    """Version, size, sha256 and pool file name of ``name``'s candidate version."""
    fields: dict[str, str] = {}
    for line in _apt_show(name).split("\n\n")[0].splitlines():
        key, sep, value = line.partition(":")
        if sep and not line.startswith(" "):
            fields[key] = value.strip()
    try:
        return PackageInfo(
            name, fields["Version"], int(fields["Size"]), fields["SHA256"], fields["Filename"]
        )
    except KeyError as exc:
        raise CorpusError(f"apt-cache show {name}: no {exc} field; found {sorted(fields)}") from exc


def unpacked(name: str, max_mb: float = DEFAULT_MAX_MB, cache: Path | None = None) -> Path:
    """The unpacked file tree of Debian package ``name`` (downloaded and unpacked once)."""
    root = (cache or debian_cache()) / name
    record, tree = root / "package.json", root / "tree"
    if record.is_file() and tree.is_dir():
        return tree
    info = package_info(name)
    if info.size > max_mb * 1e6:
        raise CorpusError(
            f"Debian package {name} is {info.size / 1e6:.0f} MB, over the {max_mb:.0f} MB limit "
            f"of this source; raise the limit in the source's pack list to include it"
        )
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=root) as tmp:
        folder = Path(tmp)
        _apt_download(name, folder)
        debs = sorted(folder.glob("*.deb"))
        if len(debs) != 1:
            raise CorpusError(f"apt-get download {name}: expected one .deb, found {debs}")
        deb = debs[0]
        digest = file_sha256(deb)
        if digest != info.sha256 or deb.stat().st_size != info.size:
            raise CorpusError(
                f"{deb.name}: sha256 {digest[:16]}… / {deb.stat().st_size} bytes, but apt-cache "
                f"says {info.sha256[:16]}… / {info.size}; run `apt-get update` and retry"
            )
        out = folder / "tree"
        done = subprocess.run(["dpkg-deb", "-x", str(deb), str(out)], capture_output=True)
        if done.returncode != 0:
            raise CorpusError(f"dpkg-deb -x {deb.name} failed: {done.stderr.decode()[-300:]}")
        if tree.exists():
            shutil.rmtree(tree)
        os.replace(out, tree)
    tmp_record = record.with_name(record.name + ".partial")
    tmp_record.write_text(json.dumps({**asdict(info), "deb": Path(info.filename).name}, indent=1))
    os.replace(tmp_record, record)
    return tree


def installed_version(name: str, cache: Path | None = None) -> str:
    """The version recorded when ``name`` was unpacked into the cache ("" if never)."""
    record = (cache or debian_cache()) / name / "package.json"
    return str(json.loads(record.read_text())["version"]) if record.is_file() else ""


class CopyrightIndex:
    """Licence per installed file from a package's DEP-5 ``copyright`` file."""

    def __init__(self, text: str, package: str = "") -> None:
        from debian.copyright import Copyright, NotMachineReadableError

        self.package = package
        self.fallback = f"see /usr/share/doc/{package}/copyright (not machine-readable)"
        self.rules: list[tuple[list[_Tail], str]] = []
        try:
            parsed = Copyright(text.splitlines(keepends=True), strict=False)
        except (NotMachineReadableError, ValueError):
            return
        for paragraph in parsed.all_files_paragraphs():
            licence = str(getattr(paragraph.license, "synopsis", "") or "")
            for pattern in paragraph.files:
                self.rules.append((_tails(pattern), licence or self.fallback))

    @classmethod
    def of_tree(cls, tree: Path, package: str) -> CopyrightIndex:
        path = tree / "usr" / "share" / "doc" / package / "copyright"
        if not path.is_file():
            raise CorpusError(f"{path} not found; expected the copyright file of {package}")
        return cls(path.read_text(encoding="utf-8", errors="replace"), package)

    def licence(self, path: str) -> str:
        """The licence of an installed (or archive-member) path: the matching pattern with the
        most literal characters (on ties the later paragraph: in DEP-5 the last match wins)."""
        return self.match(path)[1]

    def match(self, path: str) -> tuple[int, str]:
        """``(literal characters of the best pattern, licence)``; ``-1`` when nothing matched."""
        parts = path.strip("/").split("/")
        folders = set(parts[:-1])
        best, licence = -1, self.fallback
        for tails, rule_licence in self.rules:
            for tail in tails:
                if tail.literal >= best and tail.matches(parts, folders):
                    best, licence = tail.literal, rule_licence
                    break
        return best, licence


@dataclass(frozen=True)
class _Tail:
    """A DEP-5 ``Files:`` pattern, or a tail of it with leading folders dropped.

    The whole pattern matches the end of a path at a folder boundary with DEP-5's semantics
    (``*`` crosses ``/``). A tail (``etc/samples/*`` -> ``samples/*``: source-tree folders that
    the installed path lacks) matches component by component (``*`` stays within a name), only
    if none of the dropped folders is in the path (else it is another folder's pattern), and only
    if it keeps a wildcard-free name. ``*`` alone is the catch-all, literal length 0.
    """

    regex: re.Pattern[str] | None
    parts: tuple[str, ...]
    dropped: frozenset[str]
    literal: int

    def matches(self, parts: list[str], folders: set[str]) -> bool:
        if self.regex is not None:
            return self.regex.search("/".join(parts)) is not None
        if self.dropped & folders or len(self.parts) > len(parts):
            return False
        tail = parts[-len(self.parts) :]
        return all(fnmatch.fnmatchcase(p, t) for p, t in zip(tail, self.parts, strict=True))


def _tails(pattern: str) -> list[_Tail]:
    parts = pattern.strip("/").split("/")
    literal = sum(len(re.sub(r"[*?]", "", part)) for part in parts)
    tails = [
        _Tail(
            re.compile(r"(?:^|/)" + fnmatch.translate(pattern.strip("/"))), (), frozenset(), literal
        )
    ]
    for start in range(1, len(parts)):
        tail = tuple(parts[start:])
        if all(any(c in part for c in "*?[") for part in tail):
            continue
        dropped = frozenset(p for p in parts[:start] if not any(c in p for c in "*?["))
        tail_literal = sum(len(re.sub(r"[*?]", "", part)) for part in tail)
        tails.append(_Tail(None, tail, dropped, tail_literal))
    return tails


FREESOUND = re.compile(r"freesound\.org/(?:people/[^/\s]+/)?sounds/(\d+)")


def freesound_ids(text: str) -> set[str]:
    """Freesound sound ids named in a text (a copyright file): ESC-50 clips come from freesound,
    and a different cut of the same recording would not be caught by a content hash."""
    return set(FREESOUND.findall(text))


def locale_tag(locale: str) -> str:
    """A package's locale name as a BCP-47-like tag: ``pt_BR`` -> ``pt-BR``, ``zh_tw`` ->
    ``zh-TW``, ``sr@latin`` -> ``sr-Latn``, ``ca@valencia`` -> ``ca-valencia``."""
    base, _, variant = locale.partition("@")
    lang, _, region = base.partition("_")
    tag = lang.lower() + (f"-{region.upper()}" if region else "")
    if variant:
        tag += "-Latn" if variant.lower() == "latin" else f"-{variant.lower()}"
    return tag


def unique_by_content(
    files: Iterable[tuple[Path, tuple[Caption, ...], str]],
) -> list[tuple[Path, tuple[Caption, ...], str]]:
    """``(path, captions, group)`` without files whose bytes equal an earlier file's: packages
    ship one sound under several names. A duplicate's captions join the first file's when both
    are in one group; across groups they are dropped, so a held-out group's caption can never
    reach a training clip."""
    first: dict[str, int] = {}
    out: list[tuple[Path, tuple[Caption, ...], str]] = []
    for path, captions, group in files:
        digest = file_sha256(path)
        if digest in first:
            kept_path, kept, kept_group = out[first[digest]]
            if kept_group == group:
                merged = kept + tuple(c for c in captions if c not in kept)
                out[first[digest]] = (kept_path, merged, kept_group)
            continue
        first[digest] = len(out)
        out.append((path, captions, group))
    return out


class DebianSource(CorpusSource):
    """A corpus source built from Debian packages (downloaded and unpacked on first use)."""

    max_mb: ClassVar[float] = DEFAULT_MAX_MB

    def unavailable(self, ctx: CorpusContext) -> str | None:
        return tools_missing()

    @staticmethod
    def origin(package: str, path: str, cache: Path | None = None) -> str:
        """``debian:<package>=<version>:<path inside the package or archive>``."""
        return f"debian:{package}={installed_version(package, cache)}:{path}"
