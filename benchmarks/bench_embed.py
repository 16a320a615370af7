"""Inference speed of echoic's ViT against transformers' ASTModel of the same shape, in one run.

Both models get random weights, fp32, eval, ``torch.inference_mode``; 10-s clips as 128-bin fbank
(10 ms hop → 998 frames). AST's stride-16 convolution keeps 62 time patches (it drops the last 6
frames), so echoic gets the same 992 frames and both see 8 × 62 = 496 patch tokens (+ CLS for echoic,
+ CLS + distillation for AST). Rounds alternate between the models and two ≈1-s probes of the fp32
matmul peak (2048³ ``torch.mm``, which is MKL, and the same product on oneDNN, which echoic's fused
inference path uses), reversing the order every round so that load from other processes hits all of
them alike; medians are reported, plus per-round ratios.

Run::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_embed.py            # vit_base, batch 8
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_embed.py --quick    # seconds-long smoke run
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_embed.py --compile  # + torch.compile path
    .venv/bin/python benchmarks/bench_embed.py --size vit_tiny --precision fp32,bf16,int8 --no-ast

``--precision`` adds echoic at each reduced precision (``echoic.embed.precision``: bf16 weights and
activations; int8 dynamic quantisation of every Linear) to the same alternating rounds, prints the
CPU model, its bf16 / VNNI flags and the thread count, the bf16 matmul peak, each precision's
speed relative to fp32 and its output error against fp32, and what ``precision="auto"`` picks.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from echoic.encoders import ViTConfig, ViTEncoder, encoder_config
from echoic.layers.fused import fused_inference
from echoic.types import Features

HOP_S = 0.010
WINDOW_S = 0.025


@dataclass
class Timing:
    name: str
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def fbank_frames(seconds: float) -> int:
    """Kaldi-style frame count (snip edges, 25 ms window, 10 ms hop)."""
    return 1 + int((seconds - WINDOW_S) / HOP_S + 1e-6)


def encoder_flops(config: ViTConfig, n_patches: int, n_extra: int) -> float:
    """Matmul FLOPs of one clip: patch projection, qkv, attention (QKᵀ and AV), out-proj, MLP."""
    dim, hidden = config.dim, int(config.dim * config.mlp_ratio)
    n = n_patches + n_extra
    patch_pixels = config.patch[0] * config.patch[1]
    per_layer = 2 * n * (3 * dim * dim + dim * dim + 2 * dim * hidden) + 2 * 2 * n * n * dim
    return float(2 * n_patches * patch_pixels * dim + config.depth * per_layer)


def build_ast(config: ViTConfig, frames: int) -> torch.nn.Module:
    from transformers import ASTConfig, ASTModel

    if config.patch[0] != config.patch[1]:
        raise SystemExit(f"AST needs square patches; echoic config has {config.patch}.")
    ast_config = ASTConfig(
        hidden_size=config.dim,
        num_hidden_layers=config.depth,
        num_attention_heads=config.heads,
        intermediate_size=int(config.dim * config.mlp_ratio),
        patch_size=config.patch[0],
        frequency_stride=config.patch[0],
        time_stride=config.patch[1],
        num_mel_bins=config.n_bins,
        max_length=frames,
        layer_norm_eps=config.norm_eps,
        attn_implementation="sdpa",
    )
    return ASTModel(ast_config).eval()


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="vit_base", help="registered echoic encoder size")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (after 1 warm-up)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave default)")
    parser.add_argument("--mm-size", type=int, default=2048, help="square fp32 matmul peak probe")
    parser.add_argument(
        "--compile", action="store_true", help="also time torch.compile(echoic) (inductor, frozen)"
    )
    parser.add_argument(
        "--ablate", action="store_true", help="also time echoic without its fused oneDNN kernels"
    )
    parser.add_argument("--no-ast", action="store_true", help="skip the transformers baseline")
    parser.add_argument("--quick", action="store_true", help="smoke mode: vit_test, tiny inputs")
    parser.add_argument(
        "--precision", default="fp32", help="comma-separated: fp32,bf16,int8 (echoic only)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.batch, args.seconds, args.repeats, args.mm_size = "vit_test", 2, 2.0, 2, 256
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    config = encoder_config(args.size)
    assert isinstance(config, ViTConfig)
    frames = fbank_frames(args.seconds)
    echoic_frames = (frames // config.patch[1]) * config.patch[1]  # the frames AST patches
    echoic = ViTEncoder(config).eval()
    features = Features(
        values=torch.randn(args.batch, config.n_bins, echoic_frames),
        lengths=torch.full((args.batch,), echoic_frames, dtype=torch.int64),
        hop_s=HOP_S,
        first_centre_s=WINDOW_S / 2,
    )
    n_patches = echoic.num_tokens(echoic_frames)
    n_cls = 1 if config.cls_token else 0

    runners: dict[str, Callable[[], object]] = {"echoic": lambda: echoic(features)}
    reduced = _reduced_precision_runners(echoic, features, args.precision.split(","))
    runners.update({name: run for name, (run, _) in reduced.items()})
    if args.ablate:

        def unfused() -> object:
            with fused_inference(False):
                return echoic(features)

        runners["echoic_unfused"] = unfused
    if args.compile:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True  # constant weights: inductor prepacks them for oneDNN
        compiled = torch.compile(echoic, dynamic=False)
        runners["echoic_compiled"] = lambda: compiled(features)
    ast_tokens = 0
    if not args.no_ast:
        ast = build_ast(config, frames)
        ast_input = features.values.new_empty(args.batch, frames, config.n_bins).normal_()
        ast_tokens = ast.embeddings.position_embeddings.shape[1]  # patches + CLS + distillation
        runners["transformers_ast"] = lambda: ast(ast_input)

    a = torch.randn(args.mm_size, args.mm_size)
    b = torch.randn(args.mm_size, args.mm_size)
    loops = {"peak_mkl_mm": 1, "peak_onednn": 1, "peak_bf16_mm": 1}
    products: dict[str, Callable[[], object]] = {"peak_mkl_mm": lambda: torch.mm(a, b)}
    if reduced:
        a16, b16 = a.bfloat16(), b.bfloat16()
        products["peak_bf16_mm"] = lambda: torch.mm(a16, b16)
    if hasattr(torch.ops.mkldnn, "_linear_pointwise"):  # a @ b.T on oneDNN: same FLOPs
        products["peak_onednn"] = lambda: torch.ops.mkldnn._linear_pointwise(
            a, b, None, "none", [], ""
        )
    for name, product in products.items():

        def probe(name: str = name, product: Callable[[], object] = product) -> None:
            for _ in range(loops[name]):
                product()

        runners[name] = probe

    timings = {name: Timing(name, []) for name in runners}
    with torch.inference_mode():
        for fn in runners.values():  # warm-up (and compilation)
            fn()
        for name in products:  # sustained probes of ≈ 1 s rather than one lucky burst
            loops[name] = 1 if args.quick else max(1, min(50, round(1.0 / timed(runners[name]))))
        names = list(runners)
        for round_ in range(args.repeats):  # alternate the order so drifting load hits all alike
            for name in names if round_ % 2 == 0 else names[::-1]:
                timings[name].seconds.append(timed(runners[name]))

    audio_s = args.batch * args.seconds
    flops = encoder_flops(config, n_patches, n_cls)
    mm_flops = 2.0 * args.mm_size**3
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, encoder {args.size}")
    print(f"batch {args.batch} × {args.seconds:g} s, {frames} fbank frames, {args.repeats} rounds")
    tokens = f"tokens per clip: echoic {n_patches} patches + {n_cls} CLS = {n_patches + n_cls}"
    if ast_tokens:
        ratio = ast_tokens / (n_patches + n_cls)
        tokens += f"; AST {ast_tokens} incl. CLS + distillation (AST / echoic = {ratio:.3f})"
    print(tokens)
    print(f"encoder matmul FLOPs per clip (echoic): {flops / 1e9:.2f} GFLOP")
    results: dict[str, float] = {}
    peaks: dict[str, list[float]] = {}
    for name in products:
        per_round = [mm_flops * loops[name] / t / 1e9 for t in timings[name].seconds]
        peaks[name] = per_round
        results[f"{name}_gflops"] = statistics.median(per_round)
        label = {"peak_mkl_mm": "fp32 torch.mm (MKL)", "peak_onednn": "fp32 oneDNN"}.get(
            name, "bf16 torch.mm"
        )
        print(f"matmul peak, {args.mm_size}³ {label}: {results[f'{name}_gflops']:.1f} GFLOP/s")
    for name, timing in timings.items():
        if name in products:
            continue
        speed = audio_s / timing.median
        results[f"{name}_audio_s_per_s"] = speed
        line = f"{name:>18}: median {timing.median:.3f} s/batch, {speed:.2f} audio-s per wall-s"
        if name.startswith("echoic"):
            achieved = [flops * args.batch / t / 1e9 for t in timing.seconds]
            gflops = flops * args.batch / timing.median / 1e9
            results[f"{name}_gflops"] = gflops
            line += f", {gflops:.1f} GFLOP/s"
            for peak_name, peak in peaks.items():
                pct = statistics.median(100 * x / p for x, p in zip(achieved, peak, strict=True))
                results[f"{name}_percent_of_{peak_name}"] = pct
                line += f", {pct:.0f} % of {peak_name}"
        print(line)
    if "transformers_ast" in timings:
        base = timings["transformers_ast"]
        for name, timing in timings.items():
            if name.startswith("echoic"):
                per_round = [b / e for b, e in zip(base.seconds, timing.seconds, strict=True)]
                ratio = base.median / timing.median
                results[f"{name}_vs_ast"] = ratio
                print(
                    f"speed {name} / transformers_ast: {ratio:.2f}× (ratio of medians), "
                    f"{statistics.median(per_round):.2f}× (median of per-round ratios: "
                    f"{', '.join(f'{r:.2f}' for r in per_round)})"
                )
    print("(% of peak: median over rounds of achieved GFLOP/s / that round's probe)")
    if reduced:
        _report_precisions(echoic, features, timings, reduced, results)
    return results


def _reduced_precision_runners(
    echoic: ViTEncoder, features: Features, precisions: list[str]
) -> dict[str, tuple[Callable[[], object], Callable[[], torch.Tensor]]]:
    """``echoic_<precision>`` → (timed call, call returning the float32 last layer)."""
    import copy
    import warnings

    out: dict[str, tuple[Callable[[], object], Callable[[], torch.Tensor]]] = {}
    for precision in precisions:
        if precision == "bf16":
            model = copy.deepcopy(echoic).to(torch.bfloat16)
            feats = Features(
                features.values.bfloat16(),
                features.lengths,
                features.hop_s,
                features.first_centre_s,
            )
        elif precision == "int8":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from torch.ao.quantization import quantize_dynamic

                model = quantize_dynamic(copy.deepcopy(echoic), {torch.nn.Linear}, torch.qint8)
            feats = features
        elif precision == "fp32":
            continue
        else:
            raise SystemExit(f"unknown precision {precision!r}: use fp32, bf16, int8")

        def call(model: torch.nn.Module = model, feats: Features = feats) -> object:
            return model(feats)

        def last(model: torch.nn.Module = model, feats: Features = feats) -> torch.Tensor:
            return model(feats).last.float()

        out[f"echoic_{precision}"] = (call, last)
    return out


def _report_precisions(
    echoic: ViTEncoder,
    features: Features,
    timings: dict[str, Timing],
    reduced: dict[str, tuple[Callable[[], object], Callable[[], torch.Tensor]]],
    results: dict[str, float],
) -> None:
    from echoic.embed.precision import AUTO_MIN_SPEEDUP, cpu_flags, cpu_model, has_native_bf16

    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16"})
    print(f"CPU: {cpu_model()}; flags: {' '.join(flags)}; {torch.get_num_threads()} threads")
    with torch.inference_mode():
        exact = echoic(features).last
        for name, (_, last) in reduced.items():
            per_round = [
                b / e for b, e in zip(timings["echoic"].seconds, timings[name].seconds, strict=True)
            ]
            ratio = timings["echoic"].median / timings[name].median
            err = float((last() - exact).norm() / exact.norm())
            results[f"{name}_vs_fp32"] = ratio
            results[f"{name}_relative_error"] = err
            print(
                f"speed {name} / echoic fp32: {ratio:.2f}× (median of per-round ratios "
                f"{statistics.median(per_round):.2f}×); last layer relative error {err:.2e}"
            )
    bf16 = results.get("echoic_bf16_vs_fp32")
    if not has_native_bf16():
        print("precision='auto' picks fp32 here: no native bf16 (avx512_bf16 / amx_bf16)")
    elif bf16 is not None:
        pick = "bf16" if bf16 >= AUTO_MIN_SPEEDUP else "fp32"
        print(
            f"precision='auto' rule (native bf16, pick bf16 at >= {AUTO_MIN_SPEEDUP}x): with "
            f"bf16 / fp32 = {bf16:.2f}x measured here it picks {pick} for this encoder (auto "
            "measures the model itself once and caches the decision)"
        )


if __name__ == "__main__":
    main()
