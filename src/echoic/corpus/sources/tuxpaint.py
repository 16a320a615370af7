"""Tux Paint stamps (Debian ``tuxpaint-stamps-default``, GPL-2): sounds with human captions.

A stamp is ``<name>.png|svg`` with ``<name>.txt`` (first line: its English description; then one
``<locale>.utf8=<text>`` line per translation), and optionally

- ``<name>.ogg|wav``: the stamp's sound effect (a frog croaking for "A frog.", a camera shutter
  for "A camera."): ``tuxpaint_captions``, captioned with the English line and every translation
  (``human``); a sound without a ``.txt`` gets a ``template`` caption from its file name;
- ``<name>_<locale>.ogg``: a localised sound (the digits and letters spoken in that language):
  ``tuxpaint_captions``, captioned with that locale's line;
- ``<name>_desc.ogg`` / ``<name>_desc_<locale>.ogg|wav``: the description read aloud (default
  English / that locale): ``tuxpaint_spoken``, captioned with the text that is spoken.

The captions describe the stamp's picture, hence the object that makes the sound, not the sound's
acoustics; ``tuxpaint_spoken`` pairs speech with its transcript. Every clip of one stamp shares
one group, so a held-out stamp's captions never meet training audio (20% of stamps held out).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from echoic.corpus.base import SOURCES, CorpusContext, CorpusItem
from echoic.corpus.debian import (
    CopyrightIndex,
    DebianSource,
    locale_tag,
    unique_by_content,
    unpacked,
)
from echoic.corpus.names import template_caption
from echoic.data.captions import Caption

PACKAGE = "tuxpaint-stamps-default"
STAMPS = Path("usr/share/tuxpaint/stamps")
AUDIO = (".ogg", ".wav")
LOCALE = re.compile(r"[a-z]{2,3}(?:_[A-Za-z]{2,4})?(?:@[a-z]+)?")
HELDOUT_FRACTION = 0.2


@dataclass
class Stamp:
    """One stamp's texts and sound files (paths relative to the stamps folder)."""

    english: str = ""
    translations: dict[str, str] = field(default_factory=dict)  # lower-case locale -> text
    locales: dict[str, str] = field(default_factory=dict)  # lower-case locale -> as written
    sound: Path | None = None
    localised: dict[str, Path] = field(default_factory=dict)
    spoken: dict[str, Path] = field(default_factory=dict)  # "" = default (English)


def parse_stamp_text(text: str) -> tuple[str, dict[str, str]]:
    """``(English description, {locale: translation})`` of a stamp ``.txt`` file."""
    english, translations = "", {}
    for line in text.splitlines():
        line = line.strip()
        match = re.match(r"^([A-Za-z_@]+)\.utf8=(.*)$", line)
        if match:
            if match.group(2).strip():
                translations[match.group(1)] = match.group(2).strip()
        elif line and not english:
            english = line
    return english, translations


def _audio_stem(name: str) -> str | None:
    for ext in AUDIO:
        if name.endswith(ext):
            stem = name[: -len(ext)]
            return stem[:-4] if stem.endswith(".ogg") else stem  # a "_desc_da.ogg.ogg" typo
    return None


def scan_stamps(root: Path) -> dict[str, Stamp]:
    """Stamp key (path without extension, relative to ``root``) → its texts and sounds."""
    stamps: dict[str, Stamp] = {}
    for txt in sorted(root.rglob("*.txt")):
        english, translations = parse_stamp_text(txt.read_text(encoding="utf-8", errors="replace"))
        key = txt.relative_to(root).with_suffix("").as_posix()
        stamps[key] = Stamp(
            english,
            {k.lower(): v for k, v in translations.items()},
            {k.lower(): k for k in translations},
        )
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stem = _audio_stem(path.name)
        if stem is None:
            continue
        rel = path.relative_to(root)
        key = (rel.parent / stem).as_posix()
        head, sep, tail = key.rpartition("_desc")
        if sep and (tail == "" or (tail.startswith("_") and LOCALE.fullmatch(tail[1:]))):
            stamps.setdefault(head, Stamp()).spoken[tail[1:].lower()] = rel
            continue
        parts = key.split("_")
        for n in (2, 1):  # "_en_GB", "_zh_tw", "_de"
            head, tail = "_".join(parts[:-n]), "_".join(parts[-n:])
            if len(parts) > n and LOCALE.fullmatch(tail) and head in stamps:
                stamps[head].localised[tail.lower()] = rel
                break
        else:
            stamps.setdefault(key, Stamp()).sound = rel
    return stamps


def _text(stamp: Stamp, locale: str) -> tuple[str, str] | None:
    """(text, tag) of a stamp in ``locale`` ("" or an English locale may fall back to English)."""
    if locale in stamp.translations:
        return stamp.translations[locale], locale_tag(stamp.locales[locale])
    if (locale == "" or locale.startswith("en")) and stamp.english:
        return stamp.english, locale_tag(locale) if locale else "en"
    return None


class _TuxPaint(DebianSource):
    licence = "GPL-2 (debian/copyright of tuxpaint-stamps-default)"
    heldout_fraction = HELDOUT_FRACTION

    def _files(self, stamps: dict[str, Stamp]) -> Iterator[tuple[str, Path, tuple[Caption, ...]]]:
        raise NotImplementedError

    def items(self, ctx: CorpusContext) -> Iterator[CorpusItem]:
        tree = unpacked(PACKAGE, self.max_mb)
        licences = CopyrightIndex.of_tree(tree, PACKAGE)
        stamps = scan_stamps(tree / STAMPS)
        files = [
            (tree / STAMPS / rel, captions, f"tuxpaint/{key}")
            for key, rel, captions in self._files(stamps)
        ]
        for path, captions, group in unique_by_content(files):
            rel = path.relative_to(tree).as_posix()
            yield CorpusItem(
                key=path.relative_to(tree / STAMPS).as_posix(),
                path=path,
                origin=self.origin(PACKAGE, rel),
                captions=captions,
                group=group,
                licence=licences.licence(rel),
            )


@SOURCES.register("tuxpaint_captions")
class TuxPaintCaptions(_TuxPaint):
    name = "tuxpaint_captions"
    description = (
        "Tux Paint stamp sound effects (animals, instruments, household, weather) with their "
        "one-line descriptions and translations (human captions)"
    )

    def _files(self, stamps: dict[str, Stamp]) -> Iterator[tuple[str, Path, tuple[Caption, ...]]]:
        for key, stamp in sorted(stamps.items()):
            if stamp.sound is not None:
                if stamp.english:
                    captions = [Caption(stamp.english, "en", "human")]
                    for locale, text in sorted(stamp.translations.items()):
                        captions.append(Caption(text, locale_tag(stamp.locales[locale]), "human"))
                else:
                    words = template_caption(Path(key).name)
                    captions = [Caption(words, "en", "template")] if words else []
                if captions:
                    yield key, stamp.sound, tuple(captions)
            for locale, rel in sorted(stamp.localised.items()):
                found = _text(stamp, locale)
                if found is not None:
                    yield key, rel, (Caption(found[0], found[1], "human"),)


@SOURCES.register("tuxpaint_spoken")
class TuxPaintSpoken(_TuxPaint):
    name = "tuxpaint_spoken"
    description = (
        "Tux Paint stamp descriptions read aloud in 12 languages, with the text that is spoken "
        "(speech and its transcript)"
    )

    def _files(self, stamps: dict[str, Stamp]) -> Iterator[tuple[str, Path, tuple[Caption, ...]]]:
        for key, stamp in sorted(stamps.items()):
            for locale, rel in sorted(stamp.spoken.items()):
                found = _text(stamp, locale)
                if found is not None:
                    yield key, rel, (Caption(found[0], found[1], "human"),)
