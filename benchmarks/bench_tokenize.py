"""Tokenizer fit and apply throughput (frames/s), every registered tokenizer, one run, 1 thread.

Frames: echoic-tiny's frames of clips of ``gcompris_voices`` (pretraining-only speech, from
../shared/data; ``--random`` or a missing data folder: Gaussian frames of the same widths) in a
seeded random order, as ``echoic tokenizer fit`` reads them — layer 6 (1536 values per 160-ms
frame, ``freq_pool=concat``) for the tokenizers of a model's features, the acoustic input
(16 fbank frames × 128 bins = 2048 values) with the last layer as the teacher for
``beats_acoustic`` and ``random_projection``, 39 MFCC values for ``kmeans_mfcc``. The settings
are those of the measured table in docs/tokenizers.md.

fit: ``tokenizer.fit`` on ``--frames`` frames (faiss and torch on one thread); apply: the
tokenizer on the same frames, batches of 16 clips padded to the longest (``echoic tokenize``'s
batching), after one warm-up batch. Frame extraction (the model) is not timed.

Run::

    .venv/bin/python benchmarks/bench_tokenize.py --frames 5000
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

from _table import machine
from echoic.embed.token_frames import FrameSource, gather_frames
from echoic.tokenizers import build_tokenizer

DATA = Path(os.environ.get("ECHOIC_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
FIT_AUDIO = DATA / "gcompris_voices" / "audio"

# name → (tokenizer, input kind, layer, config): the settings of docs/tokenizers.md's table
SETTINGS: dict[str, tuple[str, str, int, dict[str, object]]] = {
    "random_projection": ("random_projection", "features", -1, {}),
    "kmeans_mfcc": ("kmeans", "mfcc", 6, {"n_clusters": 100}),
    "kmeans": ("kmeans", "layer", 6, {"n_clusters": 100}),
    "rvq": ("rvq", "layer", 6, {"n_codebooks": 8, "codebook_size": 256}),
    "mvq": ("mvq", "layer", 6, {"n_codebooks": 16, "codebook_size": 256}),
    "beats_acoustic": ("beats_acoustic", "features", -1, {}),
}


def frames_for(kind: str, layer: int, targets: bool, n: int, random: bool):
    """(inputs, targets) clips of ~``n`` frames in all."""
    if random or not FIT_AUDIO.is_dir():
        g = torch.Generator().manual_seed(0)
        width = {"layer": 1536, "features": 2048, "mfcc": 39}[kind]
        xs = [torch.randn(20, width, generator=g) for _ in range(n // 20)]
        return xs, ([torch.randn(20, 1536, generator=g) for _ in xs] if targets else None)
    source = FrameSource("echoic-tiny", layer, input=kind, with_targets=targets)
    data = gather_frames([str(FIT_AUDIO)], source, max_frames=n, seed=0)
    return data.inputs, data.targets


def apply_rate(tokenizer, clips: list[torch.Tensor], batch: int = 16) -> float:
    groups = [clips[i : i + batch] for i in range(0, len(clips), batch)]

    def run(group: list[torch.Tensor]) -> None:
        padded = torch.nn.utils.rnn.pad_sequence(group, batch_first=True)
        lengths = torch.tensor([len(c) for c in group])
        tokenizer(padded, torch.arange(padded.shape[1])[None] >= lengths[:, None])

    run(groups[0])
    start = time.perf_counter()
    for group in groups:
        run(group)
    return sum(len(c) for c in clips) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--random", action="store_true", help="Gaussian frames, no model")
    parser.add_argument("--only", nargs="*", default=None, help="names of SETTINGS to run")
    args = parser.parse_args()
    import faiss

    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    print(machine())
    print(f"torch {torch.__version__}, faiss {faiss.__version__}, 1 thread, {args.frames} frames")
    print(
        f"{'tokenizer':<18} {'input':<9} {'width':>5} {'codes':>10} {'fit s':>7} "
        f"{'fit frames/s':>13} {'apply frames/s':>15}"
    )
    cache: dict[tuple[str, int, bool], tuple] = {}
    for label, (name, kind, layer, config) in SETTINGS.items():
        if args.only and label not in args.only:
            continue
        uses_targets = name == "beats_acoustic"
        key = (kind, layer, uses_targets)
        if key not in cache:
            cache[key] = frames_for(kind, layer, uses_targets, args.frames, args.random)
        xs, ys = cache[key]
        target_dim = int(ys[0].shape[1]) if ys else None
        tokenizer = build_tokenizer(name, int(xs[0].shape[1]), config, target_dim)
        n = sum(len(x) for x in xs)
        start = time.perf_counter()
        tokenizer.fit(xs, ys)
        fit_s = time.perf_counter() - start
        tokenizer.eval()
        codes = "+".join(str(k) for k in tokenizer.codebook_sizes)
        codes = (
            codes if len(codes) <= 10 else f"{tokenizer.n_codebooks}×{tokenizer.codebook_sizes[0]}"
        )
        print(
            f"{label:<18} {kind:<9} {xs[0].shape[1]:>5} {codes:>10} {fit_s:>7.1f} "
            f"{n / fit_s:>13.0f} {apply_rate(tokenizer, xs):>15.0f}"
        )


if __name__ == "__main__":
    main()
