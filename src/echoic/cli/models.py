"""`echoic models`: every model name accepted by embed/eval — zoo entries and echoic models."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "models", help="list registered models: kind, sizes, sample rate, licence, availability"
    )
    p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    p.set_defaults(func=run)


def echoic_kind(provenance: dict[str, Any]) -> str:
    """'converted' for checkpoints converted from public weights, else 'echoic'."""
    return "converted" if provenance.get("converted_from") else "echoic"


def model_rows() -> list[dict[str, Any]]:
    """One dict per registered model (zoo entries first, then echoic ``MODELS``)."""
    from echoic.checkpoint import MODELS
    from echoic.zoo.registry import ZOO

    rows = []
    for name, entry in ZOO.items():
        reason = entry.unavailable_reason()
        needs = entry.extra.get("needs_path")
        rows.append(
            {
                "name": name,
                "kind": entry.kind,
                "embedding_size": entry.embedding_size,
                "sample_rate": entry.sample_rate,
                "licence": entry.licence,
                "available": reason is None,
                "status": reason or (f"yes (needs {needs})" if needs else "yes"),
                "install": entry.install if reason else "",
                "notes": entry.notes,
            }
        )
    from echoic.embed.embedder import Embedder

    for name, factory in MODELS.items():
        model = factory()
        rows.append(
            {
                "name": name,
                "kind": echoic_kind(model.config.provenance),
                "embedding_size": int(Embedder(model).embedding_size),  # its recommended pooling
                "sample_rate": model.sample_rate,
                "licence": model.config.licence or "unknown",
                "available": True,
                "status": "yes",
                "install": "",
                "notes": model.label,
            }
        )
    return rows


def run(args: argparse.Namespace) -> int:
    rows = model_rows()
    if args.json:
        for row in rows:
            print(json.dumps(row, sort_keys=True))
        return 0
    header = ("name", "kind", "dim", "rate", "available", "licence")
    table = [
        (
            r["name"],
            r["kind"],
            str(r["embedding_size"] or "?"),
            str(r["sample_rate"] or "?"),
            "yes" if r["available"] else "no",
            r["licence"],
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(header)]
    for line in [header, *table]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    notes = [f"- {r['name']}: {r['status']}" for r in rows if r["status"] != "yes"]
    if notes:
        print()
        print("\n".join(notes))
    return 0
