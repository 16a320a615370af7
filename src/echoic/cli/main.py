"""`echoic <verb>`: each verb is a module in this package with ``add_parser(subparsers)``.

Dropping ``cli/<verb>.py`` with an ``add_parser`` function is enough to add a verb; the function
registers its sub-parser and sets ``func`` (called with the parsed namespace, returns an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import echoic.cli as cli_pkg
from echoic.errors import EchoicError

_NOT_VERBS = {"main", "demo"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="echoic", description="Self-supervised audio representations: embed, evaluate, train."
    )
    from echoic import __version__

    parser.add_argument("--version", action="version", version=f"echoic {__version__}")
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB")
    for info in sorted(pkgutil.iter_modules(cli_pkg.__path__), key=lambda m: m.name):
        if info.name in _NOT_VERBS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"echoic.cli.{info.name}")
        add = getattr(module, "add_parser", None)
        if add is not None:
            add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EchoicError as err:
        print(f"echoic {args.verb}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
