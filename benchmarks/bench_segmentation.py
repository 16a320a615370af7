"""Syllable segmentation against the reference syllables (issue 21): boundary precision / recall /
F1 / R-value at 50 ms on ``syllables_librispeech``, syllable-count accuracy on ``syllables_fsdd``,
segments per second, for the energy-nucleus baseline and the greedy frame-similarity segmentation
of any echoic model's frames.

Reference: the task folders ``echoic tasks build --tasks syllables_librispeech,syllables_fsdd``
writes (pocketsphinx alignment + maximal-onset syllables; docs/tasks.md). Every clip of every fold
is scored (nothing here is trained); settings are each method's defaults, tuned on nothing.

    .venv/bin/python benchmarks/bench_segmentation.py --tasks-dir /tmp/syl/full \\
        --method energy --method similarity:echoic-tiny
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import soundfile as sf
import torch

from echoic.embed.nuclei import NucleiConfig
from echoic.embed.segment import SimilarityConfig
from echoic.embed.segment_files import EnergySegmenter, FrameSegmenter
from echoic.evaluate.segmentation import (
    BoundaryScores,
    boundaries_of,
    boundary_scores,
    count_scores,
    tokens_per_second,
)


def task_clips(task_dir: Path, limit: int | None) -> list[tuple[Path, list[dict]]]:
    """(wav, reference syllable events) of every fold of a HEAR event task folder."""
    rate_dir = next(p for p in task_dir.iterdir() if p.is_dir() and p.name.isdigit())
    clips = []
    for fold in sorted(task_dir.glob("fold*.json")):
        for name, events in json.loads(fold.read_text()).items():
            clips.append((rate_dir / fold.stem / name, events))
    clips.sort(key=lambda c: c[0].name)
    return clips[:limit] if limit else clips


def segmenter(spec: str) -> tuple[str, object]:
    if spec == "energy":
        return spec, EnergySegmenter(NucleiConfig())
    kind, _, model = spec.partition(":")
    if kind != "similarity" or not model:
        raise SystemExit(f"--method is 'energy' or 'similarity:MODEL'; found {spec!r}")
    from echoic.zoo.registry import resolve_model

    return spec, FrameSegmenter(resolve_model(model), SimilarityConfig())


def score(name: str, seg: object, clips: list[tuple[Path, list[dict]]], batch: int) -> dict:
    total = BoundaryScores(0, 0, 0)
    counts_pred, counts_ref, n_segments, durations = [], [], [], []
    start = time.process_time()
    for i in range(0, len(clips), batch):
        part = clips[i : i + batch]
        waves = [sf.read(str(p), dtype="float32", always_2d=True)[0].mean(axis=1) for p, _ in part]
        rows = seg.segment(waves)  # type: ignore[attr-defined]
        for row, (_, events), wave in zip(rows, part, waves, strict=True):
            reference = boundaries_of(
                [e["start"] / 1000 for e in events], [e["end"] / 1000 for e in events]
            )
            total = total + boundary_scores(boundaries_of(row.starts, row.ends), reference)
            counts_pred.append(len(row))
            counts_ref.append(len(events))
            n_segments.append(len(row))
            durations.append(len(wave) / 16000)
    counts = count_scores(counts_pred, counts_ref)
    return {
        "method": name,
        "clips": len(clips),
        **{k: round(v, 4) for k, v in total.as_dict().items()},
        "count_accuracy": round(counts.accuracy, 4),
        "count_mae": round(counts.mean_absolute_error, 3),
        "segments_per_s": round(tokens_per_second(n_segments, durations), 3),
        "reference_per_s": round(tokens_per_second(counts_ref, durations), 3),
        "cpu_s": round(time.process_time() - start, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks-dir", type=Path, required=True)
    p.add_argument("--method", action="append", default=[])
    p.add_argument("--limit", type=int, default=None, help="clips per task (default: all)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--out", type=Path, default=None, help="also write the rows as JSON lines")
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    for task in ("syllables_librispeech", "syllables_fsdd"):
        folder = next(args.tasks_dir.glob(f"{task}-*"), None)
        if folder is None:
            raise SystemExit(f"no {task}-* folder in {args.tasks_dir}: build it first")
        clips = task_clips(folder, args.limit)
        for spec in args.method or ["energy"]:
            name, seg = segmenter(spec)
            row = {"task": task, **score(name, seg, clips, args.batch)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    keys = ["task", "method", "precision", "recall", "f1", "r_value", "count_accuracy",
            "count_mae", "segments_per_s", "reference_per_s"]  # fmt: skip
    print("\n| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r.get(k, "")) for k in keys) + " |")


if __name__ == "__main__":
    main()
