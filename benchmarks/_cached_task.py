"""What the probe benchmarks share: one task's embeddings from the evaluation cache (imported as
``_cached_task``: a script's own folder is on ``sys.path``), after a line naming the CPU."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from echoic.embed.embedder import Embedder
from echoic.embed.precision import cpu_flags, cpu_model
from echoic.evaluate.cache import TaskEmbeddings, embed_task
from echoic.evaluate.task import HearTask, load_task


def parser(description: str, rounds: int) -> argparse.ArgumentParser:
    """``--model --task --cache --rounds --threads`` (add a script's own options to it)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", default="echoic-tiny")
    p.add_argument("--task", default="tasks/esc50_scenes-v1.0.0-full")
    p.add_argument("--cache", default="results/methods/cache")
    p.add_argument("--rounds", type=int, default=rounds)
    p.add_argument("--threads", type=int, default=1)
    return p


def load(args: argparse.Namespace) -> tuple[HearTask, TaskEmbeddings]:
    """Set the threads, print the CPU and its flags, and return the task and its embeddings
    (computed into the cache on the first run)."""
    torch.set_num_threads(args.threads)
    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "avx512_vnni"})
    print(f"CPU: {cpu_model()}; flags: {' '.join(flags)}; {torch.get_num_threads()} thread(s)")
    task = load_task(args.task)
    return task, embed_task(Embedder(args.model), task, Path(args.cache), progress=False)
