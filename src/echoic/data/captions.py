"""Audio–text pairs of a corpus: the ``captions.csv`` sidecar and its reader.

A corpus folder (``echoic corpus build``) holds ``manifest.csv`` (the training audio, one row per
file) and, when a source yields captions, ``captions.csv``: one row per caption, several per clip::

    file,source,split,group,caption,caption_lang,caption_kind

``file`` is the clip's entry exactly as written in ``manifest.csv`` (train) or ``heldout.csv``
(the held-out caption set, never in ``manifest.csv``); ``caption_kind`` is ``human`` (written by a
person for this sound or its source object, translations included), ``template`` (made from file
and folder names by a fixed rule) or ``generated`` (composed from known metadata, e.g. the
instrument, pitch and velocity of a rendered note). ``caption_lang`` is a BCP-47-like tag.

Captions are a sidecar, not a manifest column: a clip has any number of captions, audio-only
sources stay byte-for-byte as they were (their manifests and content hashes do not change), and
training on ``manifest.csv`` never sees a held-out clip.

The held-out split is a seeded hash of the clip's *group* (for example one Tux Paint stamp: its
sound effect, its localised sounds and its spoken descriptions), so no caption of a held-out
group is ever paired with training audio: :func:`in_heldout`.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from echoic.errors import EchoicError

__all__ = [
    "CAPTIONS",
    "CAPTION_COLUMNS",
    "CAPTION_KINDS",
    "HELDOUT",
    "HELDOUT_SALT",
    "MANIFEST",
    "Caption",
    "CaptionKind",
    "CaptionedClip",
    "caption_pairs",
    "in_heldout",
    "read_captions",
]

CaptionKind = Literal["human", "template", "generated"]
CAPTION_KINDS: tuple[str, ...] = get_args(CaptionKind)
CAPTIONS = "captions.csv"
MANIFEST = "manifest.csv"
HELDOUT = "heldout.csv"
CAPTION_COLUMNS = ("file", "source", "split", "group", "caption", "caption_lang", "caption_kind")
SPLITS = ("train", "heldout")
HELDOUT_SALT = "echoic-captions-v1"
"""Salt of the held-out hash; changing it changes every held-out set (a new evaluation set)."""


class CaptionError(EchoicError):
    """A captions table is missing, malformed or does not match its manifest."""


@dataclass(frozen=True)
class Caption:
    """One caption of a clip: its text, language tag and kind (``human|template|generated``)."""

    text: str
    lang: str
    kind: CaptionKind

    def __post_init__(self) -> None:
        if self.kind not in CAPTION_KINDS:
            raise CaptionError(
                f"caption kind {self.kind!r} is not one of {', '.join(CAPTION_KINDS)}"
            )
        if not self.text.strip():
            raise CaptionError("a caption must have text; found an empty string")


@dataclass(frozen=True)
class CaptionedClip:
    """A corpus clip with all its captions (in the order the source gave them).

    path: the audio file (absolute). file: its entry in the manifest. split: ``train`` or
    ``heldout``. group: the key the split was drawn from.
    """

    path: Path
    file: str
    source: str
    split: str
    group: str
    duration_s: float
    sha256: str
    captions: tuple[Caption, ...]


def in_heldout(group: str, fraction: float, salt: str = HELDOUT_SALT) -> bool:
    """Whether ``group`` is in the held-out caption set: the first 8 bytes of
    ``sha256(f"{salt}:{group}")`` as an integer, divided by 2**64, is below ``fraction``.
    Deterministic across machines and Python versions; about ``fraction`` of groups."""
    if not 0.0 <= fraction < 1.0:
        raise CaptionError(f"held-out fraction must be in [0, 1); found {fraction}")
    digest = hashlib.sha256(f"{salt}:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def read_captions(
    corpus: Path,
    split: str | None = "train",
    kinds: Collection[str] | None = None,
    langs: Collection[str] | None = None,
    sources: Collection[str] | None = None,
) -> list[CaptionedClip]:
    """The captioned clips of a corpus folder, in ``captions.csv`` order.

    split: ``train`` (the default: what an objective may train on), ``heldout`` (the retrieval
    evaluation set) or None for both. kinds / langs / sources keep only those captions (a clip
    left with none is dropped). Every caption's clip must be a row of ``manifest.csv`` (train) or
    ``heldout.csv`` (heldout), with the same split; a stale or foreign table is an error.
    """
    corpus = corpus.parent if corpus.is_file() else corpus
    table = corpus / CAPTIONS
    if not table.is_file():
        raise CaptionError(
            f"{table} not found; expected the captions table that `echoic corpus build` writes "
            f"for captioned sources (e.g. --sources tuxpaint_captions,gcompris_captions)"
        )
    if split is not None and split not in SPLITS:
        raise CaptionError(f"split must be one of {', '.join(SPLITS)} or None; found {split!r}")
    audio: dict[str, tuple[str, dict[str, str]]] = {}
    for name, manifest_split in ((MANIFEST, "train"), (HELDOUT, "heldout")):
        if (corpus / name).is_file():
            for row in _rows(corpus / name):
                audio[row["file"]] = (manifest_split, row)
    clips: dict[str, tuple[dict[str, str], list[Caption]]] = {}
    rows = _rows(table)
    if rows and set(CAPTION_COLUMNS) - set(rows[0]):
        raise CaptionError(
            f"{table}: expected columns {', '.join(CAPTION_COLUMNS)}; found {', '.join(rows[0])}"
        )
    for row in rows:
        found = audio.get(row["file"])
        if found is None or found[0] != row["split"]:
            where = "no manifest row" if found is None else f"a {found[0]} manifest row"
            raise CaptionError(
                f"{table}: caption of {row['file']} (split {row['split']}) has {where}; the "
                f"table does not belong to this corpus: rebuild it with `echoic corpus build`"
            )
        if split is not None and row["split"] != split:
            continue
        if sources is not None and row["source"] not in sources:
            continue
        caption = Caption(row["caption"], row["caption_lang"], row["caption_kind"])  # type: ignore[arg-type]
        if (kinds is not None and caption.kind not in kinds) or (
            langs is not None and caption.lang not in langs
        ):
            continue
        clips.setdefault(row["file"], (row, []))[1].append(caption)
    out = []
    for file, (row, captions) in clips.items():
        manifest_row = audio[file][1]
        path = Path(file) if Path(file).is_absolute() else corpus / file
        out.append(
            CaptionedClip(
                path=path,
                file=file,
                source=row["source"],
                split=row["split"],
                group=row["group"],
                duration_s=float(manifest_row.get("duration_s") or 0.0),
                sha256=manifest_row.get("sha256", ""),
                captions=tuple(captions),
            )
        )
    return out


def caption_pairs(clips: Iterable[CaptionedClip]) -> Iterator[tuple[Path, str, str, str]]:
    """Flatten clips into ``(clip path, caption, caption_lang, caption_kind)`` rows."""
    for clip in clips:
        for caption in clip.captions:
            yield clip.path, caption.text, caption.lang, caption.kind
