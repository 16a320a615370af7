"""GCompris activity sounds (Debian ``gcompris-qt-data``) with the descriptions the game shows.

The package keeps each activity in a Qt resource bundle (``usr/share/gcompris-qt/rcc/*.rcc``):
sounds (.ogg/.wav) next to the QML/JavaScript that uses them. Where an activity's data names a
sound together with text, that text is the caption (``human``):

- ``explore_farm_animals``: the animal's name and description ("Horse"; "The horse goes 'neigh'.
  Horses are adapted to run, ..."), and the same strings from the game's translations
  (``usr/share/gcompris-qt/translations/gcompris_<locale>.qm``, 37 locales);
- ``explore_world_music``: the region and a description of its music (with translations);
- ``instruments``: the instrument's name from its prompt ("Find the clarinet" -> "clarinet";
  translations are not used here: the prompt cannot be cut the same way in every language).

Every other sound (``core`` effects, ``memory-sound``'s recordings such as
``LRFrogsInPondDuringStormLACut``, ...) gets a ``template`` caption by the name-cleaning rule of
:mod:`echoic.corpus.names`; sounds whose names hold no word (``chronos/1.ogg``) are left out.
The spoken GCompris voices are not in this package (they are ``shared/data/gcompris_voices``).
Licences per file from ``debian/copyright`` (GPL-3+, CC-BY-3.0, CC0, Free Art, ...). 20% of
sounds are held out for retrieval evaluation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from echoic.corpus.archives import extract_members, qm_translations, rcc_files
from echoic.corpus.base import SOURCES, CorpusContext, CorpusItem
from echoic.corpus.debian import (
    CopyrightIndex,
    DebianSource,
    debian_cache,
    locale_tag,
    unique_by_content,
    unpacked,
)
from echoic.corpus.names import template_caption
from echoic.data.captions import Caption

PACKAGE = "gcompris-qt-data"
RCC = Path("usr/share/gcompris-qt/rcc")
TRANSLATIONS = Path("usr/share/gcompris-qt/translations")
AUDIO = (".ogg", ".wav")
TRANSLATED_FIELDS = ("title", "text")
ABBREVIATIONS = {
    "completetask": "task complete",
    "youcannot": "you cannot",
    "tuxok": "tux ok",
    "audioclick": "click",
    "realrainbow": "rainbow",
    "apert": "",
}
_OBJECT = re.compile(r"\{[^{}]*\}", re.S)
_FIELD = re.compile(r'"(\w+)"\s*:\s*qsTr\("((?:[^"\\]|\\.)*)"\)')
_AUDIO = re.compile(r'"audio"\s*:[^"]*"qrc:/([^"]+)\.\$CA"')
_FIND = re.compile(r"^Find the (.+)$")


def _unescape(text: str) -> str:
    return text.replace('\\"', '"').replace("\\'", "'").replace("\\n", " ").strip()


def described_sounds(sources: dict[str, str]) -> dict[str, dict[str, str]]:
    """Sound path without extension → ``{field: English text}`` from the activity data files
    (``{member path: text}``): every ``{...}`` object naming an ``"audio"`` file with ``qsTr``
    fields. ``instruments``' prompts become the instrument's name (field ``name``)."""
    found: dict[str, dict[str, str]] = {}
    for text in sources.values():
        for block in _OBJECT.findall(text):
            audio = _AUDIO.search(block)
            if audio is None:
                continue
            fields = {k: _unescape(v) for k, v in _FIELD.findall(block)}
            prompt = _FIND.match(fields.pop("text", "")) if "title" not in fields else None
            if prompt is not None:
                fields = {"name": prompt.group(1)}
            keep = {k: v for k, v in fields.items() if k in (*TRANSLATED_FIELDS, "name") and v}
            if keep:
                found.setdefault(audio.group(1), keep)
    return found


@SOURCES.register("gcompris_captions")
class GcomprisCaptions(DebianSource):
    name = "gcompris_captions"
    licence = "per file from debian/copyright: GPL-3+, CC-BY-3.0, CC0-1.0, Free Art, public domain"
    description = (
        "GCompris activity sounds (farm animals, instruments, world music, everyday effects) "
        "with the game's descriptions and their translations (human) or name templates"
    )
    heldout_fraction = 0.2

    def items(self, ctx: CorpusContext) -> Iterator[CorpusItem]:
        tree = unpacked(PACKAGE, self.max_mb)
        licences = CopyrightIndex.of_tree(tree, PACKAGE)
        members = debian_cache() / PACKAGE / "members"
        translations = {
            locale_tag(qm.stem.removeprefix("gcompris_")): qm_translations(qm.read_bytes())
            for qm in sorted((tree / TRANSLATIONS).glob("gcompris_*.qm"))
        }
        files = []
        for rcc in sorted((tree / RCC).glob("*.rcc")):
            data = rcc.read_bytes()
            texts = {
                path: read().decode("utf-8", errors="replace")
                for path, read in rcc_files(data)
                if path.endswith((".qml", ".js"))
            }
            described = described_sounds(texts)
            for member, path in sorted(
                extract_members(rcc, members / rcc.stem, lambda p: p.lower().endswith(AUDIO))
            ):
                stem = member.rsplit(".", 1)[0]
                captions = self._captions(stem, described.get(stem, {}), translations)
                if captions:
                    files.append((path, captions, f"gcompris/{stem}"))
        for path, captions, group in unique_by_content(files):
            member = path.relative_to(members).as_posix().split("/", 1)[1]
            yield CorpusItem(
                key=member,
                path=path,
                origin=self.origin(
                    PACKAGE, f"{RCC / path.relative_to(members).parts[0]}.rcc:{member}"
                ),
                captions=captions,
                group=group,
                licence=licences.licence(member),
            )

    @staticmethod
    def _captions(
        stem: str, fields: dict[str, str], translations: dict[str, dict[str, str]]
    ) -> tuple[Caption, ...]:
        if not fields:
            words = template_caption(PurePosixPath(stem).name, abbreviations=ABBREVIATIONS)
            return (Caption(words, "en", "template"),) if words else ()
        captions = [Caption(text, "en", "human") for text in fields.values()]
        for tag, table in translations.items():
            for key in TRANSLATED_FIELDS:
                text = table.get(fields.get(key, ""), "").strip()
                if text:
                    captions.append(Caption(text, tag, "human"))
        return tuple(dict.fromkeys(captions))
