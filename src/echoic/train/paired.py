"""Paired audio–caption data for the audio–text objectives (``data.captions: true``).

Every training clip carries one or more captions; each step pairs the clip's random crop(s) with
**one** caption drawn from a generator seeded by ``(seed, epoch, position, 2)`` — the same
numbers that seed the crop (:mod:`echoic.train.data`), so a paired batch is still a pure function
of the seed and how many batches came before it, and resuming stays exact. The captions are
tokenized in the data-loader workers by the objective's tokenizer (:class:`PairCollate`), and
the batch gains ``text_ids`` ``(B, L)`` / ``text_padding`` ``(B, L)``: one row per clip, and
``groups`` ``(B, 2)``: each clip's co-occurrence ids (its ``group`` and ``source`` in
``captions.csv``, numbered over the whole clip list; :func:`cooccurrence_ids`) for ``htcl``.

Where captions come from (``data.train``):

* **corpus folders** (``echoic corpus build``): ``captions.csv`` beside ``manifest.csv``, read
  with :func:`echoic.data.captions.read_captions` (train split only: the held-out caption set
  never reaches training). ``data.caption_langs`` keeps some languages (a tag also matches its
  regional variants: ``en`` keeps ``en-GB``), ``data.caption_kinds`` some kinds.
* **manifests + a template** (``data.caption_template``): one caption per row made from the
  row's columns, e.g. ``"{category} spoken in {lang}"`` over ``gcompris_voices/meta.csv``:
  generated pairs for smoke recipes and tests.

Identical caption texts of a clip count once (a Tux Paint caption is often the same in ``en``,
``en-GB`` and ``en-US``), so the draw is uniform over distinct texts.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from echoic.data.captions import MANIFEST, read_captions
from echoic.errors import ConfigError
from echoic.train.config import DataConfig
from echoic.train.data import Clip, CropDataset, _entry, _resolve, collate_crops, data_hash

__all__ = [
    "ClipCaptions",
    "PairCollate",
    "PairedCropDataset",
    "cooccurrence_ids",
    "list_paired_clips",
    "paired_hash",
]


def _lang_matches(lang: str, wanted: Sequence[str]) -> bool:
    return not wanted or any(lang == w or lang.startswith(f"{w}-") for w in wanted)


class ClipCaptions(tuple[str, ...]):
    """A clip's distinct caption texts, with the clip's co-occurrence keys: ``group`` and
    ``source`` from ``captions.csv`` (a template-captioned manifest row: its caption and the
    manifest)."""

    group: str
    source: str

    def __new__(cls, texts: Sequence[str], group: str = "", source: str = "") -> ClipCaptions:
        self = super().__new__(cls, dict.fromkeys(t.strip() for t in texts if t.strip()))
        self.group, self.source = group, source
        return self

    def __reduce__(self) -> tuple[Any, ...]:  # keep the keys through pickling (data workers)
        return (ClipCaptions, (tuple(self), self.group, self.source))


def _distinct(texts: Sequence[str], group: str = "", source: str = "") -> ClipCaptions:
    return ClipCaptions(texts, group, source)


def cooccurrence_ids(captions: Sequence[tuple[str, ...]]) -> list[tuple[int, int]]:
    """``(group id, source id)`` of each clip: indexes into the sorted distinct ``group`` /
    ``source`` keys of :class:`ClipCaptions` (plain tuples: each clip its own group)."""
    keys = [
        (c.group, c.source) if isinstance(c, ClipCaptions) else (f"#{i}", "")
        for i, c in enumerate(captions)
    ]
    groups = {g: n for n, g in enumerate(sorted({g for g, _ in keys}))}
    sources = {s: n for n, s in enumerate(sorted({s for _, s in keys}))}
    return [(groups[g], sources[s]) for g, s in keys]


def _corpus_pairs(source: str, data: DataConfig) -> list[tuple[Clip, ClipCaptions]]:
    path = _resolve(source)
    folder = path.parent if path.is_file() else path
    if not (folder / MANIFEST).is_file():
        raise ConfigError(
            f"data.train entry {source!r}: expected a corpus folder with {MANIFEST} and "
            "captions.csv (echoic corpus build), or set data.caption_template to caption a "
            "manifest's rows."
        )
    clips = read_captions(folder, split="train", kinds=data.caption_kinds or None)
    out = []
    for clip in clips:
        texts = _distinct(
            [c.text for c in clip.captions if _lang_matches(c.lang, data.caption_langs)],
            clip.group,
            clip.source,
        )
        if texts:
            key = clip.sha256 or clip.file  # location-independent when the corpus has hashes
            out.append((Clip(path=str(clip.path), key=key), texts))
    return out


def _template_pairs(source: str, template: str) -> list[tuple[Clip, ClipCaptions]]:
    path = _resolve(source)
    if not (path.is_file() and path.suffix.lower() in (".csv", ".tsv")):
        raise ConfigError(
            f"data.caption_template fills a manifest's columns; data.train entry {source!r} is "
            "not a .csv / .tsv manifest."
        )
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t" if path.suffix.lower() == ".tsv" else ","))
    column = next(
        (c for c in ("file", "path", "audio_filepath", "audio_path") if rows and c in rows[0]), None
    )
    if column is None:
        raise ConfigError(f"{path}: expected a manifest with a 'file' or 'path' column.")
    out = []
    for row in rows:
        try:
            caption = template.format(**row)
        except (KeyError, IndexError) as err:
            raise ConfigError(
                f"data.caption_template {template!r} names {err} which {path} does not have; "
                f"its columns: {', '.join(rows[0])}."
            ) from None
        out.append((_entry(path.parent, row[column]), _distinct([caption], caption, str(path))))
    return out


def list_paired_clips(data: DataConfig) -> tuple[list[Clip], list[ClipCaptions]]:
    """The clips of ``data.train`` and the distinct captions of each (module docstring)."""
    if not data.train:
        raise ConfigError(
            "data.train is empty; expected corpus folders with captions.csv, e.g. "
            "--data.train '[corpus]'."
        )
    pairs: list[tuple[Clip, ClipCaptions]] = []
    for source in data.train:
        if data.caption_template:
            pairs.extend(_template_pairs(str(source), data.caption_template))
        else:
            pairs.extend(_corpus_pairs(str(source), data))
    if data.max_files is not None:
        pairs = pairs[: data.max_files]
    if not pairs:
        raise ConfigError(
            f"no captioned clips in data.train {list(data.train)} with caption_langs "
            f"{list(data.caption_langs) or 'any'} and caption_kinds "
            f"{list(data.caption_kinds) or 'any'}; widen the filters."
        )
    return [clip for clip, _ in pairs], [texts for _, texts in pairs]


def paired_hash(clips: Sequence[Clip], captions: Sequence[tuple[str, ...]]) -> str:
    """``sha256:<16 hex>`` of the clips (:func:`~echoic.train.data.data_hash`) and their captions."""
    digest = hashlib.sha256(data_hash(clips).encode())
    for texts in captions:
        digest.update(("\x1f".join(texts) + "\n").encode())
    return f"sha256:{digest.hexdigest()[:16]}"


class PairedCropDataset(CropDataset):
    """:class:`~echoic.train.data.CropDataset` whose items also carry ``"caption"``: one of the
    read clip's captions, drawn from a generator seeded by ``(seed, epoch, position, 2)``."""

    def __init__(
        self, clips: Sequence[Clip], captions: Sequence[tuple[str, ...]], **kwargs: Any
    ) -> None:
        super().__init__(clips, **kwargs)
        if len(captions) != len(self.clips) or not all(captions):
            raise ConfigError(
                f"expected at least one caption for each of the {len(self.clips)} clips; found "
                f"{len(captions)} caption lists ({sum(not c for c in captions)} empty)."
            )
        self.captions = list(captions)
        self.groups = cooccurrence_ids(self.captions)

    def __getitem__(self, number: int) -> dict[str, Any]:
        item = super().__getitem__(number)
        epoch, position = divmod(int(number), len(self.clips))
        rng = np.random.default_rng([self.seed, epoch, position, 2])
        texts = self.captions[item["clip"]]
        item["caption"] = texts[int(rng.integers(len(texts)))]
        item["groups"] = self.groups[item["clip"]]
        return item


class PairCollate:
    """Collate paired items: :func:`~echoic.train.data.collate_crops` plus ``captions`` (one per
    clip) and their tokens ``text_ids`` / ``text_padding`` ``(B, L)`` (picklable: runs in the
    workers)."""

    def __init__(self, tokenizer: Callable[[list[str]], Any]) -> None:
        self.tokenizer = tokenizer

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        batch = collate_crops(items)
        captions = [str(it["caption"]) for it in items]
        tokens = self.tokenizer(captions)
        batch["captions"] = captions
        batch["text_ids"] = torch.as_tensor(tokens.input_ids)
        batch["text_padding"] = torch.as_tensor(tokens.padding_mask)
        if all("groups" in it for it in items):
            batch["groups"] = torch.tensor([list(it["groups"]) for it in items], dtype=torch.long)
        return batch
