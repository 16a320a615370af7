"""`echoic tokenizer fit | list | metrics`: fit a tokenizer on a model's frames, list the
registered ones, score a fitted one against task labels.

    echoic tokenizer fit --tokenizer kmeans --model echoic-tiny --layer 6 AUDIO... --out tok/
    echoic tokenizer fit --tokenizer beats_acoustic --model echoic-tiny AUDIO... --out tok/
    echoic tokenizer metrics --tokenizer tok/ --tasks tasks/fsdd_digits-v1.0.0-full

``fit`` reads frames of the audio (``--input layer``: the model's layer; ``features``: its
acoustic input per time step; ``mfcc``: 39 MFCC values per time step), at most
``--max-frames`` of them from files in a seeded random order, fits, and writes
``tokenizer.safetensors`` + ``tokenizer.json`` (and ``config.json``, so the directory is also a
``bag_of_tokens`` model for ``echoic eval --model DIR``). ``beats_acoustic`` reads the acoustic
input (default ``--input features``) and learns to predict the layer's frames (the teacher).
``--resume`` fits a saved tokenizer further (``kmeans`` goes on from its centroids and counts;
the others fit again). ``--set key=value`` sets config fields (``--set n_clusters=500``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from echoic.cli.embed import parse_layer
from echoic.model_format import DEFAULT_MODEL


def parse_setting(text: str) -> tuple[str, Any]:
    """'key=value' with a JSON value ('n_clusters=500', 'train="gradient"' or train=gradient)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set expects key=value; found {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tokenizer", help="fit, list and score tokenizers (frames → discrete ids)"
    )
    verbs = p.add_subparsers(dest="tokenizer_verb", metavar="ACTION")
    fit = verbs.add_parser("fit", help="fit a tokenizer on a model's frames of audio files")
    fit.add_argument("paths", nargs="+", help="audio files and/or folders")
    fit.add_argument("--tokenizer", required=True, help="a registered tokenizer (tokenizer list)")
    fit.add_argument("--model", default=DEFAULT_MODEL, help="echoic model name or directory")
    fit.add_argument("--layer", type=parse_layer, default=None, help="index, 'mean' or weights")
    fit.add_argument("--input", choices=("layer", "features", "mfcc"), default=None)
    fit.add_argument("--set", type=parse_setting, action="append", default=[], metavar="K=V")
    fit.add_argument("--max-frames", type=int, default=20000, help="frames to fit on")
    fit.add_argument("--max-files", type=int, default=None, help="files to read at most")
    fit.add_argument("--seed", type=int, default=0, help="file order and tokenizer seed")
    fit.add_argument("--resume", action="store_true", help="fit the tokenizer in --out further")
    fit.add_argument("--out", required=True, help="tokenizer directory to write")
    fit.add_argument("--threads", type=int, default=None, help="torch / faiss threads")
    fit.set_defaults(func=run_fit)
    listing = verbs.add_parser("list", help="registered tokenizers and their config defaults")
    listing.set_defaults(func=run_list)
    metrics = verbs.add_parser("metrics", help="NMI / purity of a tokenizer's ids vs task labels")
    metrics.add_argument("--tokenizer", required=True, help="a fitted tokenizer directory")
    metrics.add_argument("--tasks", nargs="+", required=True, help="multiclass HEAR task dirs")
    metrics.add_argument("--seed", type=int, default=0)
    metrics.add_argument("--out", default=None, help="write the scores as JSON here")
    metrics.add_argument("--threads", type=int, default=None, help="torch threads")
    metrics.set_defaults(func=run_metrics)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _threads(n: int | None) -> None:
    if n:
        import faiss
        import torch

        torch.set_num_threads(n)
        faiss.omp_set_num_threads(n)


def run_fit(args: argparse.Namespace) -> int:
    import time

    from echoic.embed.token_frames import FrameSource, gather_frames
    from echoic.tokenizers import TOKENIZERS, build_tokenizer, load_tokenizer
    from echoic.zoo.bag_of_tokens import write_model_config

    _threads(args.threads)
    cls = TOKENIZERS.get(args.tokenizer)
    kind = args.input or ("features" if cls.uses_targets else "layer")
    source = FrameSource(args.model, args.layer, input=kind, with_targets=cls.uses_targets)
    start = time.perf_counter()
    data = gather_frames(args.paths, source, args.max_frames, args.max_files, args.seed)
    read_s = time.perf_counter() - start
    for path, cause in data.skipped:
        print(f"skipped {path}: {cause}")
    print(
        f"frames: {data.n_frames} from {len(data.files)} file(s) ({source.input} of "
        f"{source.embedder.label}, layer {source.layer}, hop {source.hop_ms:g} ms) in {read_s:.1f} s"
    )
    config = {"seed": args.seed, **dict(args.set)}
    if args.resume:
        tokenizer = load_tokenizer(args.out)
    else:
        target_dim = int(data.targets[0].shape[1]) if data.targets else None
        tokenizer = build_tokenizer(
            args.tokenizer, int(data.inputs[0].shape[1]), config, target_dim
        )
    start = time.perf_counter()
    stats = tokenizer.fit(data.inputs, data.targets)
    fit_s = time.perf_counter() - start
    tokenizer.source = {**source.describe(), "fit_files": len(data.files)}
    tokenizer.frame_hop_ms = source.hop_ms
    tokenizer.save(args.out)
    write_model_config(args.out, tokenizer)
    shown = ", ".join(f"{k}={v:.4g}" for k, v in stats.items())
    print(
        f"fit {tokenizer.name} in {fit_s:.1f} s ({data.n_frames / max(fit_s, 1e-9):.0f} frames/s): {shown}"
    )
    print(f"wrote {Path(args.out) / 'tokenizer.json'} (+ tokenizer.safetensors, config.json)")
    return 0


def run_list(args: argparse.Namespace) -> int:
    import dataclasses
    import sys

    from echoic.tokenizers import TOKENIZERS

    for name, cls in TOKENIZERS.items():
        defaults = {f.name: f.default for f in dataclasses.fields(cls.config_class)}
        doc = (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()
        summary = doc[0].split(":", 1)[-1].strip() if doc else ""
        print(f"{name}: {summary}")
        print("  " + ", ".join(f"{k}={v}" for k, v in defaults.items()))
    return 0


def run_metrics(args: argparse.Namespace) -> int:
    from echoic.embed.token_frames import recorded_source
    from echoic.evaluate.token_quality import token_quality
    from echoic.tokenizers import load_tokenizer

    _threads(args.threads)
    tokenizer = load_tokenizer(args.tokenizer).eval()
    source = recorded_source(tokenizer.source)
    results = []
    for task in args.tasks:
        scores = token_quality(task, source, tokenizer, seed=args.seed)
        results.append({"tokenizer": str(args.tokenizer), "name": tokenizer.name, **scores})
        print(
            f"{scores['task']}: {scores['clips']} clips, {scores['labels']} labels, "
            f"{scores['frames']} frames | frame NMI {scores['frame_nmi']:.3f} (shuffled "
            f"{scores['frame_nmi_shuffled']:.3f}), purity "
            f"{scores['frame_purity']:.3f} | bag-of-tokens NMI {scores['bag_nmi']:.3f}, purity "
            f"{scores['bag_purity']:.3f}"
        )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0
