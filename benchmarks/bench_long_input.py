"""Long inputs: SSAMBA (bidirectional Mamba) vs the ViT at equal width and depth, and the cost of a
ViT training step under patchout (issue 20).

Part 1 — forward time and peak memory of ``ssamba_tiny`` and ``vit_tiny`` (192 wide, 12 blocks,
16 × 16 patches over 128 Kaldi-fbank bins, random weights, eval, ``torch.no_grad``) on one clip of
10 s, 60 s and 300 s (100 frames a second; 8 tokens per 16 frames), the least CPU time of
``--repeats`` forwards (3) after a 1-s warm-up, each model and length in a fresh child process; memory is the child's peak RSS (``ru_maxrss``) minus its RSS
just before the forward. Prints the ratios ViT / SSAMBA and the growth of each model's time from
one length to the next (linear = the length ratio; quadratic = its square).

Part 2 — one supervised-style ViT training step (patch tokens → mean pool → linear head → cross
entropy, backward, AdamW) on a batch of 10-s clips at several ``patchout`` settings vs none, and one
SSAST step (the objective keeps every token: dropped ones only become padding, no saving), each
setting in a fresh child: median step time of 3 after a warm-up, peak RSS delta.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_long_input.py --threads 1
    .venv/bin/python benchmarks/bench_long_input.py --seconds 10 60 --skip-patchout   # quick look
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

MB = 1e6
PATCHOUT_SETTINGS: list[dict[str, Any]] = [
    {},
    {"time": 15},
    {"freq": 2},
    {"time": 25, "freq": 3},  # PaSST's proportions (40 of 99 columns, 4 of 12 rows)
    {"random": 0.5},
]


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def features(batch: int, seconds: float, seed: int = 0) -> Any:
    import torch

    from echoic.types import Features

    frames = int(seconds * 100)
    values = torch.randn(batch, 128, frames, generator=torch.Generator().manual_seed(seed))
    return Features(values, torch.full((batch,), frames), hop_s=0.01, first_centre_s=0.0125)


def child_forward(model: str, seconds: float, repeats: int) -> dict[str, Any]:
    """The fastest of ``repeats`` forwards in CPU time (the process's, so a busy machine's other
    jobs count less than in wall time; one thread: CPU time ≈ compute time)."""
    import torch

    from echoic.encoders import build_encoder

    torch.manual_seed(0)
    encoder = build_encoder(model).eval()
    times = []
    with torch.no_grad():
        encoder(features(1, 1.0))  # warm-up: one-time allocations and kernel selection
        feats = features(1, seconds)
        before = rss_bytes()
        for _ in range(repeats):
            start = time.process_time()
            out = encoder(feats)
            times.append(time.process_time() - start)
    return {
        "wall_s": min(times),
        "peak_mb": (peak_bytes() - before) / MB,
        "tokens": int(out.last.shape[1]),
    }


def child_train(
    patchout: dict[str, Any], method: str, batch: int, seconds: float
) -> dict[str, Any]:
    import torch

    from echoic.encoders import build_encoder
    from echoic.objectives import build_objective
    from echoic.types import TrainBatch

    torch.manual_seed(0)
    encoder = build_encoder("vit_tiny", patchout=patchout or None).train()
    feats = features(batch, seconds)
    labels = torch.randint(0, 50, (batch,), generator=torch.Generator().manual_seed(0))
    if method == "supervised":
        head = torch.nn.Linear(encoder.spec.width, 50)
        modules = torch.nn.ModuleList([encoder, head])

        def loss_fn(step: int) -> torch.Tensor:
            out = encoder(feats)
            valid = (~out.padding_mask)[..., None].float()
            pooled = (out.last * valid).sum(1) / valid.sum(1)
            return torch.nn.functional.cross_entropy(head(pooled), labels)

    else:
        objective = build_objective(method, encoder).train()
        modules = torch.nn.ModuleList([objective])

        def loss_fn(step: int) -> torch.Tensor:
            return objective(TrainBatch.of(feats), torch.Generator().manual_seed(step)).loss

    optimiser = torch.optim.AdamW(modules.parameters(), lr=1e-4)

    def step(i: int) -> float:
        start = time.perf_counter()
        loss = loss_fn(i)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        return time.perf_counter() - start

    step(0)  # warm-up (AdamW state, kernel selection)
    before = rss_bytes()
    times = [step(i) for i in range(1, 4)]
    return {"step_s": statistics.median(times), "peak_mb": (peak_bytes() - before) / MB}


def run_child(args: list[str], threads: int) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [sys.executable, __file__, "--threads", str(threads), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["killed"])[-1]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def cpu_line() -> str:
    import torch

    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return (
        f"CPU: {model}; {os.cpu_count()} cores visible; torch {torch.__version__}, capability "
        f"{torch.backends.cpu.get_cpu_capability()}"
    )


def part_long(seconds: list[float], threads: int, vit_max_s: float, repeats: int) -> None:
    print(
        "\n== forward, one clip, eval, no_grad (ssamba_tiny vs vit_tiny: 192 wide, 12 blocks); "
        f"time = the least CPU seconds of {repeats} forwards =="
    )
    print(f"{'seconds':>8} {'tokens':>7} {'ssamba s':>9} {'vit s':>8} {'vit/ssamba':>10} "
          f"{'ssamba MB':>10} {'vit MB':>8} {'MB ratio':>8}")  # fmt: skip
    rows: dict[str, list[tuple[float, float]]] = {"ssamba_tiny": [], "vit_tiny": []}
    for s in seconds:
        mamba = run_child(["--child-forward", "ssamba_tiny", str(s), str(repeats)], threads)
        vit: dict[str, Any] = {"error": f"skipped above {vit_max_s:g} s (--vit-max-s)"}
        if s <= vit_max_s:
            vit = run_child(["--child-forward", "vit_tiny", str(s), str(repeats)], threads)
        for name, r in (("ssamba_tiny", mamba), ("vit_tiny", vit)):
            if "error" in r:
                print(f"  {name} at {s:g} s: {r['error']}")
            else:
                rows[name].append((s, r["wall_s"]))
        if "error" in mamba or "error" in vit:
            continue
        print(
            f"{s:>8g} {mamba['tokens']:>7} {mamba['wall_s']:>9.2f} {vit['wall_s']:>8.2f} "
            f"{vit['wall_s'] / mamba['wall_s']:>10.2f} {mamba['peak_mb']:>10.0f} "
            f"{vit['peak_mb']:>8.0f} {vit['peak_mb'] / max(mamba['peak_mb'], 1e-9):>8.2f}"
        )
    for name, points in rows.items():
        growth = [
            f"{a:g}→{b:g} s: time ×{tb / ta:.1f} (length ×{b / a:g})"
            for (a, ta), (b, tb) in itertools.pairwise(points)
        ]
        print(f"  {name}: " + "; ".join(growth))


def part_patchout(threads: int, batch: int, seconds: float) -> None:
    print(f"\n== vit_tiny training step, batch {batch} × {seconds:g} s, patchout vs none ==")
    print(
        f"{'objective':>10} {'patchout':>28} {'step s':>7} {'vs none':>8} {'peak MB':>8} {'vs none':>8}"
    )
    for method, settings in (
        ("supervised", PATCHOUT_SETTINGS),
        ("ssast", [{}, {"time": 25, "freq": 3}]),
    ):
        base: dict[str, Any] | None = None
        for setting in settings:
            r = run_child(
                ["--child-train", json.dumps(setting), method, str(batch), str(seconds)], threads
            )
            label = json.dumps(setting) if setting else "none"
            if "error" in r:
                print(f"{method:>10} {label:>28} {r['error']}")
                continue
            base = base or r
            print(
                f"{method:>10} {label:>28} {r['step_s']:>7.2f} {r['step_s'] / base['step_s']:>8.2f} "
                f"{r['peak_mb']:>8.0f} {r['peak_mb'] / max(base['peak_mb'], 1e-9):>8.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 60.0, 300.0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--vit-max-s", type=float, default=300.0, help="skip the ViT above this")
    parser.add_argument("--skip-patchout", action="store_true")
    parser.add_argument("--patchout-batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="forwards per model and length")
    parser.add_argument("--child-forward", nargs=3, metavar=("MODEL", "SECONDS", "REPEATS"))
    parser.add_argument("--child-train", nargs=4, metavar=("PATCHOUT", "METHOD", "BATCH", "S"))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.child_forward:
        model, seconds, repeats = args.child_forward
        print(json.dumps(child_forward(model, float(seconds), int(repeats))))
        return
    if args.child_train:
        setting, method, batch, seconds = args.child_train
        print(json.dumps(child_train(json.loads(setting), method, int(batch), float(seconds))))
        return
    print(cpu_line())
    print(f"threads: torch {args.threads} (children: OMP_NUM_THREADS={args.threads}); "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    part_long(args.seconds, args.threads, args.vit_max_s, args.repeats)
    if not args.skip_patchout:
        part_patchout(args.threads, args.patchout_batch, 10.0)


if __name__ == "__main__":
    main()
