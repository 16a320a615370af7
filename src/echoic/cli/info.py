"""`echoic info MODEL`: print a model's card, and for echoic models its configuration and size."""

from __future__ import annotations

import argparse
import json

from echoic.model_format import DEFAULT_MODEL


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("info", help="print a model's card and config")
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL, help="model name or directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from echoic.cards import ECHOIC_KINDS, find_card
    from echoic.config import to_dict

    card = find_card(args.model)
    print(f"card: {json.dumps(card.describe(), indent=2, sort_keys=True)}")
    if card.kind not in ECHOIC_KINDS:
        return 0
    model = card.build()
    n_params = sum(p.numel() for p in model.encoder.parameters())
    print(f"model: {model.label}")
    print(f"encoder parameters: {n_params:,}; sample rate: {model.sample_rate} Hz")
    print(json.dumps(to_dict(model.config), indent=2, sort_keys=True))
    return 0
