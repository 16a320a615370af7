"""``sfx_pack_captions``: game sound-effect packs from Debian, captioned from their file names.

Each pack in :data:`PACKS` names a Debian package, where its audio lives (folders of the
unpacked tree, or members of zip archives inside it such as warzone's ``base.wz``), what to leave
out (music, voices with opaque names), and words for the name-cleaning rule of
:mod:`echoic.corpus.names` (``caption_kind = template``). Identical files are listed once; the
licence of each file comes from the package's ``debian/copyright``. Adding a pack is one more
:class:`SfxPack` entry (check its size with ``apt-cache show``; packs over ``max_mb`` are refused
before download). Not here yet, by size: ``0ad-data`` (1.38 GB), ``redeclipse-data`` (862 MB).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from echoic.corpus.archives import extract_members
from echoic.corpus.base import SOURCES, CorpusContext, CorpusItem
from echoic.corpus.debian import (
    DEFAULT_MAX_MB,
    CopyrightIndex,
    DebianSource,
    debian_cache,
    unique_by_content,
    unpacked,
)
from echoic.corpus.names import template_caption
from echoic.data.captions import Caption

AUDIO = (".ogg", ".wav", ".flac")


@dataclass(frozen=True)
class SfxPack:
    """One Debian package of sound effects and how its names become captions.

    include / exclude: glob patterns on the path inside the tree (or the archive member path);
    archive: a zip archive inside the tree whose members are the audio (None: plain files);
    context: how many parent folder names join the caption (before the file name's words);
    names: whole file stems (variant digits stripped) → caption words, for opaque names;
    only_named: keep only files whose stem is in ``names``.
    """

    package: str
    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    archive: str | None = None
    context: int = 0
    abbreviations: Mapping[str, str] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)
    only_named: bool = False
    max_mb: float = DEFAULT_MAX_MB


_MEGAGLEST_WORDS = {
    "ack": "voice acknowledging",
    "select": "voice answering",
    "die": "dying",
    "swordman": "swordsman",
    "stickfighter": "stick fighter",
    "orni": "ornithopter",
    "sel": "voice answering",
    "ele": "elephant",
    "eleattack": "elephant attack",
    "elewalk": "elephant walk",
    "firearrowhit": "fire arrow hit",
    "indiattack": "attack",
    "ab": "",
    "dr": "",
    "tech": "",
    "mudchute": "",
}
_MEGAGLEST_NAMES = {
    "day": "daytime ambience",
    "sunny_day": "sunny daytime ambience",
    "desertday": "desert daytime ambience",
    "night": "night ambience",
    "nightime": "night ambience",
    "hell": "hellish ambience",
}
_WARZONE_NAMES = {  # warzone2100 audio/sfx/ stems (only these are kept: the rest are opaque)
    "oilpump": "oil pump",
    "powerhum": "power generator hum",
    "steam": "steam",
    "rocket": "rocket launch",
    "mgheavy": "heavy machine gun",
    "mgtower": "machine gun tower firing",
    "asltmg": "assault machine gun",
    "lrgcan": "large cannon",
    "medcan": "medium cannon",
    "smlcan": "small cannon",
    "rapdcan": "rapid fire cannon",
    "hivelcan": "high velocity cannon",
    "flmthrow": "flamethrower",
    "gaussgun": "gauss gun",
    "mortar": "mortar",
    "plslsr": "pulse laser",
    "weld": "welding",
    "build": "construction",
    "bldstart": "construction start",
    "bldloop": "construction loop",
    "splash": "splash",
    "hwtzflgt": "howitzer shell flight",
    "hovstart": "hover vehicle start",
    "hovmove": "hover vehicle moving",
    "hovstop": "hover vehicle stop",
    "tread": "tank treads",
    "vtol-move": "vtol aircraft flying",
    "vtolland": "vtol aircraft landing",
    "vtoloff": "vtol aircraft take off",
    "con-move": "construction vehicle moving",
    "con-move-off": "construction vehicle stopping",
    "con-shut-down": "construction vehicle shutting down",
    "cyber-move": "cyborg walking",
    "scream": "scream",
    "help": "voice shouting help",
    "lrgexpl": "large explosion",
    "smlexpl": "small explosion",
    "lsrexpl": "laser explosion",
    "atnkexpl": "anti-tank explosion",
    "mpodexpl": "mini-pod explosion",
    "richet": "ricochet",
    "squish": "squish",
    "bldfall": "building collapsing",
    "beep": "interface beep",
}

PACKS: tuple[SfxPack, ...] = (
    SfxPack(
        "sonic-pi-samples",
        include=("usr/share/sonic-pi/samples/*.flac",),
        abbreviations={
            "misc": "",
            "mehackit": "",
            "glitch": "glitch",
            "cineboom": "cinematic boom",
        },
    ),
    SfxPack(
        "megaglest-data",
        include=("usr/share/games/megaglest/*.wav", "usr/share/games/megaglest/*.ogg"),
        exclude=("*/music/*",),
        abbreviations=_MEGAGLEST_WORDS,
        names=_MEGAGLEST_NAMES,
    ),
    SfxPack(
        "warzone2100-data",
        archive="usr/share/games/warzone2100/base.wz",
        include=("audio/sfx/*.ogg",),
        names=_WARZONE_NAMES,
        only_named=True,
    ),
)


def _stem_key(stem: str) -> str:
    """A stem without its variant number: ``weld-2`` -> ``weld``, ``richet3`` -> ``richet``."""
    return stem.lower().rstrip("0123456789").rstrip("-_") or stem.lower()


def pack_caption(pack: SfxPack, path: str) -> str:
    """The template caption of ``path`` (inside the tree or archive) under ``pack``'s rule."""
    posix = PurePosixPath(path)
    named = pack.names.get(_stem_key(posix.stem))
    if pack.only_named and named is None:
        return ""
    context = list(posix.parent.parts[-pack.context :]) if pack.context else []
    if named is not None:
        return " ".join([*context, named])
    return template_caption(posix.stem, context, pack.abbreviations, pack.names)


def _matches(path: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(path, p) for p in include) and not any(
        fnmatch.fnmatchcase(path, p) for p in exclude
    )


@SOURCES.register("sfx_pack_captions")
class SfxPackCaptions(DebianSource):
    name = "sfx_pack_captions"
    licence = "per file from debian/copyright: sonic-pi-samples CC0 / MIT; megaglest CC-BY-SA-3.0; warzone2100 GPL-2+"
    description = (
        "game sound-effect packs (sonic-pi-samples, megaglest-data, warzone2100-data) with "
        "template captions from their file names"
    )
    packs: tuple[SfxPack, ...] = PACKS

    def items(self, ctx: CorpusContext) -> Iterator[CorpusItem]:
        for pack in self.packs:
            yield from self._pack_items(pack)

    def _pack_items(self, pack: SfxPack) -> Iterator[CorpusItem]:
        tree = unpacked(pack.package, pack.max_mb)
        licences = CopyrightIndex.of_tree(tree, pack.package)
        files: list[tuple[Path, tuple[Caption, ...], str]] = []
        inner: dict[Path, str] = {}
        if pack.archive is not None:
            out = debian_cache() / pack.package / "members"
            found = extract_members(
                tree / pack.archive, out, lambda m: _matches(m, pack.include, pack.exclude)
            )
            candidates = sorted(found)
        else:
            candidates = sorted(
                (p.relative_to(tree).as_posix(), p)
                for p in tree.rglob("*")
                if p.suffix.lower() in AUDIO
                and p.is_file()
                and _matches(p.relative_to(tree).as_posix(), pack.include, pack.exclude)
            )
        for rel, path in candidates:
            caption = pack_caption(pack, rel)
            if caption:
                inner[path] = rel
                group = f"{pack.package}/{rel}"
                files.append((path, (Caption(caption, "en", "template"),), group))
        for path, captions, group in unique_by_content(files):
            rel = inner[path]
            where = f"{pack.archive}:{rel}" if pack.archive else rel
            yield CorpusItem(
                key=f"{pack.package}/{rel}",
                path=path,
                origin=self.origin(pack.package, where),
                captions=captions,
                group=group,
                licence=licences.licence(rel),
            )
