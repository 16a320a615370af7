"""`echoic convert [FORMAT|auto] CKPT --out DIR [--trust-pickle]`: a public checkpoint → an echoic
model directory (docs/converting.md)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert a public checkpoint (e.g. a Hugging Face wav2vec2 / HuBERT / WavLM folder)",
        description="Convert a public checkpoint into an echoic model directory (model.safetensors "
        "+ config.json with its provenance: source file, sha256, format, licence). FORMAT is one "
        "of --list, or 'auto' (the default) to detect it. Pickled files are read with "
        "torch.load(weights_only=True) and an allowlist; anything else is refused unless "
        "--trust-pickle. See docs/converting.md.",
    )
    p.add_argument(
        "source",
        nargs="*",
        metavar="[FORMAT] CKPT",
        help="optional format, then the checkpoint: a file or folder, or hf:ORG/NAME (fetched from "
        "the Hugging Face Hub; HF_HUB_OFFLINE=1 reads the hub cache only)",
    )
    p.add_argument("--out", help="output model directory")
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="load pickled checkpoints with plain torch.load (runs their code: trusted files only)",
    )
    p.add_argument("--list", action="store_true", help="list the formats and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from echoic.checkpoint import read_config
    from echoic.convert.registry import AUTO, CONVERTERS, convert

    if args.list:
        for name, converter in CONVERTERS.items():
            print(f"{name:16s} {converter.description}")
            print(f"{'':16s} parity-tested against {converter.reference}")
        return 0
    if len(args.source) not in (1, 2) or not args.out:
        print("usage: echoic convert [FORMAT|auto] CKPT --out DIR [--trust-pickle] (or --list)")
        return 2
    fmt, path = (AUTO, args.source[0]) if len(args.source) == 1 else args.source
    out = convert(path, args.out, fmt=fmt, trust_pickle=args.trust_pickle)
    config = read_config(out)
    prov = config.provenance
    print(
        f"converted {path} ({prov.get('format')}, {prov.get('origin')} sha256 "
        f"{str(prov.get('sha256'))[:12]}…, licence {config.licence or 'unknown'}) → {out}: "
        f"encoder {config.encoder} on {config.frontend} {config.frontend_config}"
    )
    return 0
