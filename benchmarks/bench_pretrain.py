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

The waveform methods (data2vec 2.0: one front-end pass per clip, 8 span-masked clones of its
frames, one teacher pass; WavJEPA: the student on a 20 % context, four predicted target blocks,
the EMA transformer on the student's frames of the full clip) train the waveform encoder with the same transformer as ``--encoder`` (width, depth,
heads) on wav2vec 2.0's 512-channel conv front end, on the same clips (16 kHz samples normalised
per clip; 10 s = 499 frame tokens, the ViT has 504 patches).

Reported per clip and per *view* (a copy of a clip the student encodes: 16 for EAT, 1 for MAE,
2 for SSAST, 1 for M2D, 2 for BYOL-A, 1 for TERA, 8 for data2vec 2.0, 1 for WavJEPA, 2 + 2 × 4 for
ASiT: two corrupted global views of every clip and four half-length local crops of each):

* encoder GFLOPs — student forward + backward, plus the EMA teacher's forward (EAT, M2D,
  BYOL-A, data2vec 2.0, WavJEPA, ASiT), counted with ``torch.utils.flop_counter.FlopCounterMode`` on the exact shapes the
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

from _table import machine
from echoic.data import pad_batch
from echoic.encoders import build_encoder, encoder_config
from echoic.encoders.base import Encoder
from echoic.encoders.wav import WavConfig
from echoic.features.base import build_frontend
from echoic.layers import gather_tokens, token_grid
from echoic.layers.fused import fused_inference
from echoic.masking import masked_count
from echoic.objectives import build_objective
from echoic.train.config import load_config
from echoic.types import Features, TrainBatch

RECIPES = Path(__file__).resolve().parents[1] / "configs" / "pretrain"
AST_NORM = {"window": "hanning", "n_mels": 128, "mean": -4.2677393, "std": 9.1379948}
WAVEFORM_METHODS = ("data2vec2", "wavjepa")
"""Methods that train the waveform encoder (``waveform_encoder``) on waveform features."""


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


def clips_features(n_clips: int, seconds: float, frontend_name: str = "kaldi_fbank") -> Features:
    rng = np.random.default_rng(0)
    sr = 16000
    t = np.arange(round(seconds * sr)) / sr
    audio = [
        (0.3 * np.sin(2 * np.pi * (200 + 100 * i) * t) + 0.05 * rng.standard_normal(t.size)).astype(
            np.float32
        )
        for i in range(n_clips)
    ]
    config = AST_NORM if frontend_name == "kaldi_fbank" else {"per_item": True}
    frontend = build_frontend(frontend_name, config)
    with torch.no_grad():
        return frontend(pad_batch(audio, sr))


def waveform_encoder(encoder: str) -> Encoder:
    """The waveform encoder with ``encoder``'s transformer (width, depth, heads) on wav2vec 2.0's
    conv front end, without a CLS token (data2vec 2.0 and WavJEPA have none)."""
    vit = encoder_config(encoder)
    dim, depth, heads = vit.dim, vit.depth, vit.heads  # type: ignore[attr-defined]
    return WavConfig(dim=dim, depth=depth, heads=heads, cls_token=False).build()


def recipe(method: str, encoder: str) -> dict[str, Any]:
    path = RECIPES / f"{method}_{encoder.removeprefix('vit_')}.yaml"
    return dict(load_config(path).objective.config) if path.is_file() else {}


def teacher_on_local_flops(objective: Any, features: Features) -> float:
    """FLOPs of an EMA teacher's positions + blocks on the student's local features of the full
    clips (data2vec 2.0's and WavJEPA's teacher has no front end of its own)."""
    enc, ema = objective.encoder, objective.ema
    with torch.no_grad():
        local, pad, grid = enc.embed_tokens(features, add_positions=False)
        return count_flops(
            lambda: ema.forward_tokens(ema.add_positions(local, grid, pad), pad, features)
        )


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
    elif method == "data2vec2":  # front end once per clip, then masked clones of its frames
        views = cfg.clone_batch

        def clones() -> None:
            local, pad, _ = enc.embed_tokens(features, add_positions=False)
            local, pad = local.repeat_interleave(views, 0), pad.repeat_interleave(views, 0)
            idx = torch.arange(n_keep).expand(batch * views, n_keep).contiguous()
            tokens = gather_tokens(enc.add_positions(local, grid, pad), idx)
            enc.forward_tokens(
                tokens, torch.gather(pad, 1, idx), features, idx
            ).last.sum().backward()

        flops = count_flops(clones) + teacher_on_local_flops(objective, features)
    elif method == "asit":  # per global view: corrupted + local crops, teacher on the clean view
        crops = objective.local_views(features, torch.Generator().manual_seed(0))
        views = 1 + len(crops)

        def local(view: Features) -> None:
            out = enc(view)
            (out.last.sum() + out.cls_layers[-1].sum()).backward()

        flops = count_flops(lambda: student(batch, None))
        flops += sum(count_flops(lambda v=v: local(v)) for v in crops)
        with torch.no_grad():
            flops += count_flops(lambda: objective.ema["encoder"](features))
    elif method == "wavjepa":  # student on the context; EMA transformer on the student's frames
        views = 1
        flops = count_flops(lambda: student(batch, masked_count(n_tokens, cfg.context_ratio)))
        flops += teacher_on_local_flops(objective, features)
    else:
        raise SystemExit(f"no encoder FLOP model for {method!r}")
    enc.zero_grad(set_to_none=True)
    return flops, views


def measure(method: str, encoder: str, features: Features, repeats: int) -> Row:
    torch.manual_seed(0)
    student = waveform_encoder(encoder) if method in WAVEFORM_METHODS else build_encoder(encoder)
    objective = build_objective(method, student, recipe(method, encoder)).train()
    clips = features.values.shape[0]
    per_clip = 2 if method == "asit" else 1  # ASiT: two global views of every clip
    if per_clip > 1:
        features = Features(
            features.values.repeat_interleave(per_clip, 0),
            features.lengths.repeat_interleave(per_clip, 0),
            features.hop_s,
            features.first_centre_s,
        )
    enc_flops, views = encoder_flops(method, objective, features)
    views *= per_clip
    generator = torch.Generator().manual_seed(0)

    def forward_backward() -> None:
        objective(TrainBatch.of(features, views=per_clip), generator).loss.backward()

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
    return Row(method, views, enc_flops, step_flops, statistics.median(times), clips)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", default="vit_small")
    parser.add_argument("--crop-s", type=float, default=10.0)
    parser.add_argument("--clips", type=int, default=2, help="clips per training step")
    parser.add_argument("--repeats", type=int, default=1, help="timed steps after one warm-up")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--methods", default="eat,mae,ssast,m2d,byol_a,tera,data2vec2,wavjepa,asit")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    features = clips_features(args.clips, args.crop_s)
    methods = args.methods.split(",")
    waveform = None
    if any(m in WAVEFORM_METHODS for m in methods):
        waveform = clips_features(args.clips, args.crop_s, "waveform")
    cfg = encoder_config(args.encoder)
    grid = token_grid(cfg.n_bins, features.n_frames, cfg.patch)  # type: ignore[attr-defined]
    print(machine())
    print(
        f"encoder {args.encoder}, {args.clips} clips of {args.crop_s:g} s = {features.n_frames} "
        f"frames = {grid[0]}x{grid[1]} patches, fp32 on {torch.get_num_threads()} CPU threads, "
        f"{args.repeats} timed step(s)"
    )
    if waveform is not None:
        wav = waveform_encoder(args.encoder)
        n_time = wav.grid(waveform.n_frames)[1]
        print(
            f"{', '.join(m for m in methods if m in WAVEFORM_METHODS)}: waveform encoder "
            f"{wav.spec.width} wide x {wav.spec.depth} blocks "
            f"({sum(p.numel() for p in wav.parameters()) / 1e6:.1f} M parameters), "
            f"{n_time} frame tokens per clip"
        )
    rows = [
        measure(m, args.encoder, waveform if m in WAVEFORM_METHODS else features, args.repeats)
        for m in methods
    ]
    header = (
        f"{'method':<10}{'views':>6}  {'enc GFLOP/clip':>15}{'step GFLOP/clip':>16}{'s/clip':>9}"
        f"  {'enc GFLOP/view':>15}{'s/view':>9}"
    )
    print(header)
    for r in rows:
        print(
            f"{r.method:<10}{r.views:>6}  {r.per(r.encoder_flops, False) / 1e9:>15.1f}"
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
