"""`echoic models`: every model card (echoic, converted, baseline, peer), listed without building.

Rows come from :mod:`echoic.cards`: sizes and rates are what the cards declare (``config.json`` for
echoic models, the zoo entry's fields otherwise); availability is whether a card's optional
packages can be found, checked without importing them.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "models",
        help="list registered models: kind, sizes, sample rate, availability, origin, licence",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print JSON lines instead of a table (adds architecture, layer sizes, origin sha256, "
        "install hint, notes)",
    )
    p.set_defaults(func=run)


def model_rows() -> list[dict[str, Any]]:
    """One dict per registered card, sorted by name (:meth:`echoic.cards.ModelCard.describe`)."""
    from echoic.cards import list_cards

    return [card.describe() for card in list_cards()]


def _table_rows() -> list[tuple[str, ...]]:
    from echoic.cards import list_cards

    rows: list[tuple[str, ...]] = []
    for card in list_cards():
        rows.append(
            (
                card.name,
                card.kind,
                str(card.embedding_size or "?"),
                str(card.sample_rate or "?"),
                "yes" if card.available() else "no",
                card.origin.short(),
                card.licence,
                card.unavailable_reason() or "",
                str(card.extra.get("needs_path") or ""),
            )
        )
    return rows


def run(args: argparse.Namespace) -> int:
    if args.json:
        for row in model_rows():
            print(json.dumps(row, sort_keys=True))
        return 0
    header = ("name", "kind", "dim", "rate", "available", "origin", "licence")
    rows = _table_rows()
    table = [row[: len(header)] for row in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(header)]
    for line in [header, *table]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    notes = [f"- {row[0]}: {row[7] or f'yes (needs {row[8]})'}" for row in rows if row[7] or row[8]]
    if notes:
        print()
        print("\n".join(notes))
    return 0
