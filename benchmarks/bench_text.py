"""Build time, memory and speed of the text towers (``echoic.text``), each in a fresh process.

For every available tower: seconds to import ``echoic.text`` + build the tower (the first build in
a process also imports transformers; each tower runs in its own process, so each pays that), its
parameter count, and captions embedded per second (frozen, ``torch.inference_mode``, batches of
``--batch``) and per LoRA training step (forward + backward). Prints the CPU and thread count.

Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_text.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

CAPTIONS = [
    "a dog barking in the distance",
    "rain falling on a tin roof",
    "a violin playing C4, forte",
    "footsteps on gravel",
    "a car horn honking twice in heavy traffic",
    "birds singing at dawn",
    "a door slamming shut",
    "church bells ringing over a quiet town square",
]


def measure(name: str, threads: int, batch: int, rounds: int) -> dict[str, float]:
    """Runs inside the child process."""
    import torch

    torch.set_num_threads(threads)
    start = time.perf_counter()
    from echoic.text import build_text_encoder

    tower = build_text_encoder(name, train="frozen")
    built = time.perf_counter() - start
    texts = (CAPTIONS * (batch // len(CAPTIONS) + 1))[:batch]
    with torch.inference_mode():
        tower.embed(texts)
        start = time.perf_counter()
        for _ in range(rounds):
            tower.embed(texts)
        per_second = rounds * batch / (time.perf_counter() - start)
    lora = build_text_encoder(name, train="lora")
    lora.train()
    start = time.perf_counter()
    for _ in range(rounds):
        vectors = lora.embed(texts)
        (vectors @ vectors.T).logsumexp(dim=1).mean().backward()
    train_per_second = rounds * batch / (time.perf_counter() - start)
    return {
        "build_s": round(built, 2),
        "parameters_M": round(sum(p.numel() for p in tower.parameters()) / 1e6, 1),
        "lora_trainable_k": round(
            sum(p.numel() for p in lora.parameters() if p.requires_grad) / 1e3, 1
        ),
        "embed_captions_per_s": round(per_second, 1),
        "lora_train_captions_per_s": round(train_per_second, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--towers", default="text_test,minilm,e5_small")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.threads, args.batch, args.rounds)))
        return
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line),
        platform.processor(),
    )
    flags = open("/proc/cpuinfo").read()
    extras = [f for f in ("avx2", "avx512f", "avx512_bf16", "avx512_vnni") if f" {f}" in flags]
    print(f"cpu: {cpu} ({', '.join(extras)}); threads: {args.threads}; batch: {args.batch}")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(args.threads)}
    for name in args.towers.split(","):
        command = [sys.executable, __file__, "--child", name, "--threads", str(args.threads)]
        command += ["--batch", str(args.batch), "--rounds", str(args.rounds)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode:
            print(f"{name}: failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        print(f"{name}: {done.stdout.strip()}")


if __name__ == "__main__":
    main()
