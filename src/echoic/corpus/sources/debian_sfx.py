"""``debian_sfx``: every sound of the Debian game and education data packages, for pretraining.

Audio only (no captions). One source over a package table rather than one source per package:
the packages share sounds (freesound and other libre packs are reused from game to game), and the
builder's PCM de-duplication (``pcm_dedup``) keeps the first copy in table order, so the order
below (most carefully licensed and described first) decides which package a shared sound is
credited to; a per-package source would make that order a command-line accident. One entry per
package keeps adding a package a one-line change.

Each package is downloaded once (``apt-get download``, size and sha256 checked, ``dpkg-deb -x``,
see :mod:`echoic.corpus.debian`); its tree is walked for audio files (:data:`AUDIO`) and for
archives (``.zip``, ``.pk3``, ``.wz``, Qt ``.rcc``, OpenTTD ``.cat``), whose audio members are
extracted once with their exact bytes. Every file gets

- a **category** from its path (:func:`category_of`): ``music`` under a folder whose name says
  music / song / soundtrack; ``speech`` under a voice / speech / announcer / taunt / dialogue
  folder or named ``*_desc*`` (Tux Paint's spoken descriptions); the package's own patterns
  first; else ``sfx``;
- a **licence** from the package's DEP-5 ``debian/copyright``: the more specific of the patterns
  matching the member path and the archive path (:class:`~echoic.corpus.debian.CopyrightIndex`);
  an OpenTTD ``.cat`` entry's own "License: ..." text wins.

Not read: WavPack (``teeworlds-data``'s ``.wv``), tracker modules (``.mod``, ``.xm``, ``.it``).

Packages over ``--max-package-mb`` (default 300 MB, from ``apt-cache show``) are skipped with a
warning before anything is downloaded, so CI and a default build never fetch them; raise the
limit (``echoic corpus build --max-package-mb 2000``) to include ``0ad-data`` (1.38 GB),
``redeclipse-data`` (862 MB), ``supertuxkart-data`` (628 MB) and ``widelands-data`` (381 MB).
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from echoic.corpus.archives import cat_files, extract_members
from echoic.corpus.base import SOURCES, CorpusContext, CorpusError, CorpusItem
from echoic.corpus.debian import (
    CopyrightIndex,
    DebianSource,
    debian_cache,
    package_info,
    unpacked,
)

__all__ = ["PACKAGES", "DebianPackage", "DebianSfx", "category_of"]

log = logging.getLogger(__name__)

AUDIO = (".ogg", ".oga", ".wav", ".flac", ".opus", ".mp3")
ARCHIVES = (".zip", ".pk3", ".wz", ".rcc", ".cat")
LICENCE_IN_TEXT = re.compile(r"Licen[cs]e:\s*([^.]+(?:\.\d[^.]*)?)")
CATEGORIES = ("sfx", "speech", "music")
MUSIC_WORDS = ("music", "song", "soundtrack", "jingle")
SPEECH_WORDS = ("voice", "speech", "announce", "taunt", "dialog", "narrat", "spoken")


@dataclass(frozen=True)
class DebianPackage:
    """One package of the table.

    music / speech / sfx: glob patterns (on the path inside the tree, ``archive/member`` for an
    archive member; ``*`` crosses ``/``) that force that category before the generic rule;
    exclude: patterns of files to leave out; mb: the ``.deb`` size when the table was written
    (documentation; the limit is checked against ``apt-cache show``).
    """

    name: str
    mb: float
    music: tuple[str, ...] = ()
    speech: tuple[str, ...] = ()
    sfx: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


PACKAGES: tuple[DebianPackage, ...] = (
    DebianPackage("sonic-pi-samples", 22, music=("*/loop_*",)),  # CC0, freesound ids listed
    DebianPackage("openttd-opensfx", 10),  # CC-BY-SA
    DebianPackage("gcompris-qt-data", 44),  # .rcc bundles; voices-ogg = speech
    DebianPackage(
        "tuxpaint-stamps-default",
        161,
        # localised stamp sounds are letters / digits spoken (``7_de.ogg``, ``a_en_GB.ogg``)
        speech=("*_[a-z][a-z].ogg", "*_[a-z][a-z]_[A-Za-z][A-Za-z].ogg", "*_[a-z][a-z].wav"),
    ),
    DebianPackage("warzone2100-data", 143),  # base.wz, audio/sfx + audio/voice
    DebianPackage(
        "megaglest-data",
        242,
        speech=("*_ack[0-9]*", "*_select[0-9]*", "*_sel[0-9]*", "*/ack[0-9]*", "*/sel[0-9]*"),
    ),
    DebianPackage("hedgewars-data", 145),  # Sounds/voices = speech (GFDL)
    DebianPackage("frozen-bubble-data", 22),
    DebianPackage("scorched3d-data", 32),
    DebianPackage("openarena-data", 44),  # .pk3
    DebianPackage("lincity-ng-data", 45),
    DebianPackage("pingus-data", 12),
    DebianPackage("neverball-data", 18),
    DebianPackage("extremetuxracer-data", 41),
    DebianPackage("teeworlds-data", 8),
    DebianPackage("xmoto-data", 32),
    DebianPackage("ktuberling-data", 47, speech=("*/sounds/*",)),  # words read aloud
    DebianPackage("supertux-data", 162),
    DebianPackage("freedroidrpg-data", 228),
    DebianPackage("widelands-data", 381),  # over the default limit: opt-in
    DebianPackage("supertuxkart-data", 628),  # opt-in
    DebianPackage("redeclipse-data", 862),  # opt-in; CC-BY-SA / CC-BY / CC0
    DebianPackage("0ad-data", 1378),  # opt-in; CC-BY-SA-3.0, 51 min of recorded sfx
)


def _any(path: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(path, p) for p in patterns)


def category_of(path: str, package: DebianPackage | None = None) -> str:
    """``sfx``, ``speech`` or ``music`` of a path inside a package (see the module docstring)."""
    if package is not None:
        for category, patterns in (
            ("music", package.music),
            ("speech", package.speech),
            ("sfx", package.sfx),
        ):
            if _any(path, patterns):
                return category
    posix = PurePosixPath(path.lower())
    folders = [part for part in posix.parts[:-1]]
    if any(w in f for f in folders for w in MUSIC_WORDS):
        return "music"
    if any(w in f for f in folders for w in SPEECH_WORDS) or "_desc" in posix.stem:
        return "speech"
    return "sfx"


@SOURCES.register("debian_sfx")
class DebianSfx(DebianSource):
    name = "debian_sfx"
    licence = (
        "per file from each package's debian/copyright (licences.csv): CC0, CC-BY, CC-BY-SA, "
        "GPL-2+/3+, GFDL, MIT by package"
    )
    description = (
        "sounds of Debian game / education data packages (0ad, megaglest, redeclipse, warzone2100, "
        "supertuxkart, gcompris, sonic-pi, tuxpaint, openttd, ...): sfx / speech / music by path, "
        "de-duplicated by decoded samples; packages over --max-package-mb are opt-in"
    )
    pcm_dedup = True
    packages: tuple[DebianPackage, ...] = PACKAGES

    def items(self, ctx: CorpusContext) -> Iterator[CorpusItem]:
        for package in self.packages:
            try:
                size = package_info(package.name).size
            except CorpusError as exc:
                log.warning("debian_sfx: %s skipped: %s", package.name, exc)
                continue
            if size > ctx.max_package_mb * 1e6:
                log.warning(
                    "debian_sfx: %s skipped: %.1f MB is over --max-package-mb %.1f (opt in by "
                    "raising it)",
                    package.name,
                    size / 1e6,
                    ctx.max_package_mb,
                )
                continue
            yield from self._package_items(package, ctx.max_package_mb)

    def _package_items(self, package: DebianPackage, max_mb: float) -> Iterator[CorpusItem]:
        tree = unpacked(package.name, max_mb)
        licences = CopyrightIndex.of_tree(tree, package.name)
        for path in sorted(p for p in tree.rglob("*") if p.is_file()):
            rel = path.relative_to(tree).as_posix()
            suffix = path.suffix.lower()
            if suffix in AUDIO and not _any(rel, package.exclude):
                yield self._item(package, rel, path, licences.licence(rel))
            elif suffix in ARCHIVES:
                yield from self._archive_items(package, tree, rel, licences)

    def _archive_items(
        self, package: DebianPackage, tree: Path, rel: str, licences: CopyrightIndex
    ) -> Iterator[CorpusItem]:
        out = debian_cache() / package.name / "archives" / rel
        archive_licence = licences.match(rel)
        stated: dict[str, str] = {}  # an OpenTTD .cat states each sound's licence
        if rel.endswith(".cat"):
            try:
                for name, text, _ in cat_files((tree / rel).read_bytes()):
                    found = LICENCE_IN_TEXT.search(text)
                    if found:
                        stated[name] = found.group(1).strip()
            except CorpusError:
                pass  # extract_members below reports the broken archive

        def keep(member: str) -> bool:
            inner = f"{rel}/{member}"
            return PurePosixPath(member).suffix.lower() in AUDIO and not _any(
                inner, package.exclude
            )

        try:
            members = sorted(extract_members(tree / rel, out, keep))
        except Exception as exc:  # a broken or unsupported archive: its sounds are missing
            log.warning("debian_sfx: %s:%s not read (%s)", package.name, rel, exc)
            return
        for member, path in members:
            licence = (
                stated.get(member)
                or max(licences.match(member), archive_licence, key=lambda m: m[0])[1]
            )
            yield self._item(package, f"{rel}/{member}", path, licence, where=f"{rel}:{member}")

    def _item(
        self, package: DebianPackage, rel: str, path: Path, licence: str, where: str = ""
    ) -> CorpusItem:
        return CorpusItem(
            key=f"{package.name}/{rel}",
            path=path,
            origin=self.origin(package.name, where or rel),
            licence=licence,
            category=category_of(rel, package),
        )
