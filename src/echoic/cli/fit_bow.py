"""`echoic fit-bow --audio DIR --out MODEL_DIR`: fit the bag-of-audio-words baseline."""

from __future__ import annotations

import argparse
import hashlib
import time


def parse_ints(text: str) -> tuple[int, ...]:
    """'64,64' → (64, 64)."""
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 64,64; found {text!r}"
        ) from None


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fit-bow", help="fit the bag-of-audio-words baseline (bow) on unlabelled audio"
    )
    p.add_argument("--audio", nargs="+", required=True, help="audio files and/or folders")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--max-files", type=int, default=None, help="use at most this many files")
    p.add_argument("--max-seconds-per-file", type=float, default=30.0)
    p.add_argument("--patch-frames", type=parse_ints, default=(4, 32), help="e.g. 4,32")
    p.add_argument("--codebook-sizes", type=parse_ints, default=(64, 64), help="e.g. 64,64")
    p.add_argument("--epochs", type=int, default=5, help="auto-encoder passes over the patches")
    p.add_argument("--max-patches", type=int, default=50_000, help="patches per scale")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from echoic.config import to_dict
    from echoic.data.discover import find_audio
    from echoic.errors import ConfigError
    from echoic.zoo.bow import BowConfig, save_bow
    from echoic.zoo.bow_fit import BowFitConfig, fit_bow_files

    if args.threads:
        torch.set_num_threads(args.threads)
    paths = find_audio(args.audio)
    if args.max_files is not None:
        paths = paths[: args.max_files]
    if not paths:
        raise ConfigError(f"no audio files found under {args.audio}; pass folders holding audio")
    config = BowConfig(patch_frames=args.patch_frames, codebook_sizes=args.codebook_sizes)
    fit = BowFitConfig(
        epochs=args.epochs,
        max_patches=args.max_patches,
        max_seconds_per_file=args.max_seconds_per_file,
        seed=args.seed,
    )
    start = time.perf_counter()
    log = (lambda _: None) if args.quiet else print
    model = fit_bow_files(paths, config, fit, log=log)
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{path.name}:{path.stat().st_size}\n".encode())
    out = save_bow(
        model,
        args.out,
        step=fit.epochs,
        data_hash=digest.hexdigest()[:16],
        provenance={
            "origin": "echoic fit-bow",
            "fit_audio": [str(a) for a in args.audio],
            "n_files": len(paths),
            "fit": to_dict(fit),
        },
    )
    print(
        f"fit-bow: wrote {out} ({model.embedding_size}-d) from {len(paths)} files in "
        f"{time.perf_counter() - start:.1f} s; use it as the model: {out}"
    )
    return 0
