"""Pretraining cost per clip and per view of every objective at equal encoder size, in one run.

Every objective gets the same ``vit_small`` encoder (random weights, fp32, training mode), the same
10-s clips (Kaldi fbank, 998 frames → 8 × 63 = 504 patch tokens) and its recipe's settings from
``configs/pretrain/<method>_small.yaml`` (EAT: 16 masked clones per clip sharing one teacher
pass, 80% inverse-block masking, token dropping; MAE: 80% random masking, token dropping; SSAST:
every token enters the encoder, two passes per clip — one per task — as in SSAST; M2D: 70%
random masking, online encoder on the visible tokens, EMA target on the hidden ones; BYOL-A: two
augmented views of every clip, each through the online encoder and the EMA target, on the ViT
option; TERA: one pass on the altered clip). Methods without a ``_small`` recipe use their
config's paper defaults.

Reported per clip and per *view* (a copy of a clip the student encodes: 16 for EAT, 1 for MAE,
2 for SSAST, 1 for M2D, 2 for BYOL-A, 1 for TERA):

* encoder GFLOPs — student forward + backward, plus the EMA teacher's forward (EAT, M2D,
  BYOL-A), counted with ``torch.utils.flop_counter.FlopCounterMode`` on the exact shapes the
  objective feeds the encoder (CPU attention kernels registered with the standard SDPA formulas);
* step GFLOPs — the whole training forward + backward (decoders, heads, targets included);
* wall seconds — one training step (forward, backward, AdamW, EMA hook), median of ``--repeats``
  after one warm-up step.

Run::

    .venv/bin/python benchmarks/bench_pretrain.py                 # vit_small, 10 s, 2 clips
    .venv/bin/python benchmarks/bench_pretrain.py --clips 1 --repeats 1 --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from echoic.data import pad_batch
from echoic.encoders import build_encoder, encoder_config
from echoic.features.base import build_frontend
from echoic.layers import token_grid
from echoic.layers.fused import fused_inference
from echoic.objectives import build_objective
from echoic.train.config import load_config
from echoic.types import Features, TrainBatch

RECIPES = Path(__file__).resolve().parents[1] / "configs" / "pretrain"
AST_NORM = {"window": "hanning", "n_mels": 128, "mean": -4.2677393, "std": 9.1379948}


def _cpu_sdpa(query: Any, key: Any, value: Any, *args: Any, **kwargs: Any) -> int:
    return sdpa_flop_count(query, key, value)


def _cpu_sdpa_backward(grad: Any, query: Any, key: Any, value: Any, *a: Any, **k: Any) -> int:
    return sdpa_backward_flop_count(grad, query, key, value)


CPU_ATTENTION = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_sdpa_backward,
}


def count_flops(fn: Any) -> float:
    """FLOPs of ``fn()`` (the plain PyTorch kernels, so every matmul is seen)."""
    with fused_inference(False), FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION) as c:
        fn()
    return float(c.get_total_flops())


@dataclass
class Row:
    method: str
    views: int
    encoder_flops: float
    step_flops: float
    seconds: float
    clips: int

    def per(self, value: float, per_view: bool) -> float:
        return value / (self.clips * (self.views if per_view else 1))


def clips_features(n_clips: int, seconds: float) -> Features:
    rng = np.random.default_rng(0)
    sr = 16000
    t = np.arange(round(seconds * sr)) / sr
    audio = [
        (0.3 * np.sin(2 * np.pi * (200 + 100 * i) * t) + 0.05 * rng.standard_normal(t.size)).astype(
            np.float32
        )
        for i in range(n_clips)
    ]
    frontend = build_frontend("kaldi_fbank", AST_NORM)
    with torch.no_grad():
        return frontend(pad_batch(audio, sr))


def recipe(method: str, encoder: str) -> dict[str, Any]:
    path = RECIPES / f"{method}_{encoder.removeprefix('vit_')}.yaml"
    return dict(load_config(path).objective.config) if path.is_file() else {}


def encoder_flops(method: str, objective: Any, features: Features) -> tuple[float, int]:
    """Encoder FLOPs of one training step on the shapes ``method`` uses, and views per clip."""
    enc = objective.encoder
    batch = features.values.shape[0]
    grid = enc.grid(features.n_frames)
    n_tokens = grid[0] * grid[1]
    masker = getattr(objective, "masker", None)
    n_keep = n_tokens - masker.count(grid) if masker is not None else n_tokens
    cfg = objective.config

    def student(rows: int, keep: int | None) -> None:
        f = Features(
            features.values[:1].expand(rows, -1, -1).contiguous(),
            features.lengths[:1].expand(rows).contiguous(),
            features.hop_s,
            features.first_centre_s,
        )
        idx = None if keep is None else torch.arange(keep).expand(rows, keep).contiguous()
        out = enc(f, keep_idx=idx)
        extra = out.cls_layers[-1].sum() if out.cls_layers is not None else 0.0
        (out.last.sum() + extra).backward()

    if method == "eat":
        views = cfg.clone_batch
        flops = count_flops(lambda: student(batch * views, n_keep))
        with torch.no_grad():
            flops += count_flops(lambda: objective.ema(features))
    elif method == "mae":
        views = 1
        flops = count_flops(lambda: student(batch, n_keep))
    elif method == "ssast":
        views = 1 if cfg.shared_pass else 2
        flops = views * count_flops(lambda: student(batch, None))
    elif method == "m2d":  # online on the visible tokens; the EMA target on the hidden ones only
        views = 1
        flops = count_flops(lambda: student(batch, n_keep))
        hidden = torch.arange(n_tokens - n_keep).expand(batch, -1).contiguous()
        with torch.no_grad():
            flops += count_flops(lambda: objective.ema(features, keep_idx=hidden))
    elif method == "byol_a":  # two augmented views, each through online and EMA target
        views = 2
        flops = views * count_flops(lambda: student(batch, None))
        with torch.no_grad():
            flops += views * count_flops(lambda: objective.ema["encoder"](features))
    elif method == "tera":  # one pass on the altered input
        views = 1
        flops = count_flops(lambda: student(batch, None))
    else:
        raise SystemExit(f"no encoder FLOP model for {method!r}")
    enc.zero_grad(set_to_none=True)
    return flops, views


def measure(method: str, encoder: str, features: Features, repeats: int) -> Row:
    torch.manual_seed(0)
    objective = build_objective(method, build_encoder(encoder), recipe(method, encoder)).train()
    enc_flops, views = encoder_flops(method, objective, features)
    generator = torch.Generator().manual_seed(0)

    def forward_backward() -> None:
        objective(TrainBatch.of(features), generator).loss.backward()

    step_flops = count_flops(forward_backward)
    params = [p for p in objective.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    times = []
    for i in range(repeats + 1):  # the first step warms up
        optimizer.zero_grad(set_to_none=True)
        start = time.perf_counter()
        forward_backward()
        optimizer.step()
        objective.after_optimizer_step()
        if i:
            times.append(time.perf_counter() - start)
    clips = features.values.shape[0]
    return Row(method, views, enc_flops, step_flops, statistics.median(times), clips)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", default="vit_small")
    parser.add_argument("--crop-s", type=float, default=10.0)
    parser.add_argument("--clips", type=int, default=2, help="clips per training step")
    parser.add_argument("--repeats", type=int, default=1, help="timed steps after one warm-up")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--methods", default="eat,mae,ssast,m2d,byol_a,tera")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    features = clips_features(args.clips, args.crop_s)
    cfg = encoder_config(args.encoder)
    grid = token_grid(cfg.n_bins, features.n_frames, cfg.patch)  # type: ignore[attr-defined]
    print(
        f"encoder {args.encoder}, {args.clips} clips of {args.crop_s:g} s = {features.n_frames} "
        f"frames = {grid[0]}x{grid[1]} patches, fp32 on {torch.get_num_threads()} CPU threads, "
        f"{args.repeats} timed step(s)"
    )
    rows = [measure(m, args.encoder, features, args.repeats) for m in args.methods.split(",")]
    header = (
        f"{'method':<7}{'views':>6}  {'enc GFLOP/clip':>15}{'step GFLOP/clip':>16}{'s/clip':>9}"
        f"  {'enc GFLOP/view':>15}{'s/view':>9}"
    )
    print(header)
    for r in rows:
        print(
            f"{r.method:<7}{r.views:>6}  {r.per(r.encoder_flops, False) / 1e9:>15.1f}"
            f"{r.per(r.step_flops, False) / 1e9:>16.1f}{r.per(r.seconds, False):>9.2f}"
            f"  {r.per(r.encoder_flops, True) / 1e9:>15.2f}{r.per(r.seconds, True):>9.3f}"
        )
    by_name = {r.method: r for r in rows}
    if "eat" in by_name:
        eat = by_name["eat"]
        for other in rows:
            if other is eat:
                continue
            for per_view in (False, True):
                unit = "view" if per_view else "clip"
                flop = other.per(other.encoder_flops, per_view) / eat.per(
                    eat.encoder_flops, per_view
                )
                wall = other.per(other.seconds, per_view) / eat.per(eat.seconds, per_view)
                print(
                    f"{other.method}/eat per {unit}: encoder FLOPs {flop:.2f}x, "
                    f"wall time {wall:.2f}x"
                )


if __name__ == "__main__":
    main()
