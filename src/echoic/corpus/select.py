"""``echoic corpus select``: a sub-manifest of a built corpus, by category and source.

A small corpus is often unbalanced (hours of short spoken words beside a few hundred sound
effects); the pretraining data layer keeps duplicate manifest rows, so listing a selection beside
the full manifest weights it up, and a selection of sound effects is the ``data.mix.backgrounds``
list of a mixing recipe. Categories come from the corpus's ``categories.csv`` (written by sources
that know them, e.g. ``debian_sfx``); a file without a category row is ``uncategorised``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

from echoic.corpus.base import CorpusError
from echoic.corpus.build import CATEGORIES, MANIFEST, read_manifest

__all__ = ["UNCATEGORISED", "select_rows", "write_selection"]

UNCATEGORISED = "uncategorised"


def _categories(corpus: Path) -> dict[str, str]:
    path = corpus / CATEGORIES
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["file"]: row["category"] for row in csv.DictReader(fh)}


def select_rows(
    corpus: Path, categories: Sequence[str] = (), sources: Sequence[str] = ()
) -> list[dict[str, str]]:
    """Manifest rows of ``corpus`` (a built corpus folder) whose category and source match.

    Empty ``categories`` / ``sources`` match everything. Raises :class:`CorpusError` when a
    category is asked for and the corpus has no ``categories.csv``, or when nothing matches.
    """
    corpus = Path(corpus)
    if not corpus.is_dir():
        raise CorpusError(
            f"{corpus} is not a corpus folder; expected the DIR of `echoic corpus build --out DIR`"
        )
    rows = read_manifest(corpus)
    cats = _categories(corpus)
    if categories and not cats:
        raise CorpusError(
            f"{corpus / CATEGORIES} not found; expected it to select by category. Only sources "
            f"that know categories (e.g. debian_sfx) write it; select by --sources instead"
        )
    wanted_c, wanted_s = set(categories), set(sources)
    chosen = [
        row
        for row in rows
        if (not wanted_c or cats.get(row["file"], UNCATEGORISED) in wanted_c)
        and (not wanted_s or row.get("source", "") in wanted_s)
    ]
    if not chosen:
        present_c = sorted(
            set(cats.values()) | ({UNCATEGORISED} if len(cats) < len(rows) else set())
        )
        present_s = sorted({row.get("source", "") for row in rows})
        raise CorpusError(
            f"no row of {corpus / MANIFEST} matches categories {sorted(wanted_c) or 'any'} and "
            f"sources {sorted(wanted_s) or 'any'}; found categories {present_c}, sources {present_s}"
        )
    return chosen


def write_selection(rows: Sequence[dict[str, str]], corpus: Path, out: Path) -> Path:
    """Write ``rows`` of ``corpus`` as a manifest CSV (the corpus manifest's columns) to ``out``.

    Relative paths (relative to the corpus folder) are rewritten relative to ``out``'s folder, so
    the selection can live anywhere.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    base = out.parent.resolve()
    root = Path(corpus).resolve()
    rows = [
        row
        if Path(row["file"]).is_absolute()
        else {**row, "file": os.path.relpath(root / row["file"], base)}
        for row in rows
    ]
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(out)
    return out
