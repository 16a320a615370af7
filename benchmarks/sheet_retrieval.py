"""Audio–sheet snippet retrieval (issue 23 item 5): two towers with vs without SSL pretraining.

    OMP_NUM_THREADS=1 python benchmarks/sheet_retrieval.py --seeds 0,1,2 \\
        --ssl-minutes 3 --finetune-minutes 4 --work results/sheet_retrieval

Builds ``sheet_snippets`` into ``--tasks-dir`` when it is not there (``echoic tasks build --tasks
sheet_snippets``), then for every condition and seed trains a :class:`SheetModel` (audio
``--audio-encoder``, default ``vit_tiny`` on a music log-mel; image ``--image-encoder``, default
``sheet_cnn_tiny``) on the train split with :func:`echoic.train.sheet.train_sheet`, one CPU thread:

* ``random``: no training (the towers and heads as initialised by the seed);
* ``no_ssl``: stage B only (aligned pairs, ``--finetune-minutes`` CPU-minutes);
* ``ssl``: stage A (SimCLR on each tower alone, ``--ssl-minutes`` each, train-split audio and
  images separately) then stage B as ``no_ssl``;
* ``no_ssl_long`` (only when asked for with ``--conditions``): stage B for the whole budget of
  ``ssl`` (``2 × ssl + finetune`` minutes): is it the pretraining or the extra compute?

Stage B keeps the checkpoint with the best valid-split MRR (mean of both directions, checked every
25 steps). Each run's test-split scores (:mod:`echoic.evaluate.sheet_retrieval`) go to
``WORK/<condition>-seed<seed>.json`` (a finished run is not redone) and its model to
``WORK/<condition>-seed<seed>/``. Prints the table: mean ± std over seeds, and chance levels.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

from _table import cell
from echoic.evaluate.sheet_retrieval import chance_levels, sheet_retrieval
from echoic.objectives.sheet import SheetModel, SheetModelConfig
from echoic.tasks.paths import default_data_dir
from echoic.tasks.sheet_pairs import read_sheet_pairs
from echoic.tasks.writer import build_task, get_builder
from echoic.train.sheet import SheetTrainConfig, StageConfig, normalised_config, train_sheet

ROOT = Path(__file__).resolve().parents[1]
CONDITIONS = ("random", "no_ssl", "ssl")
COLUMNS = (
    ("a2s_R@1", "a→s R@1"),
    ("a2s_R@5", "a→s R@5"),
    ("a2s_MRR", "a→s MRR"),
    ("s2a_R@1", "s→a R@1"),
    ("s2a_R@5", "s→a R@5"),
    ("s2a_MRR", "s→a MRR"),
    ("piece_acc", "piece acc"),
    ("piece_acc_vote", "piece acc (vote)"),
)
LABELS = {
    "random": "random init (untrained)",
    "no_ssl": "no SSL (stage B only)",
    "ssl": "with SSL (stage A + B)",
    "no_ssl_long": "no SSL, stage B for the SSL run's budget",
}


def task_dir(args: argparse.Namespace) -> Path:
    builder = get_builder("sheet_snippets")
    folder = args.tasks_dir / builder.info.directory_name(args.mode)
    if not (folder / "pairs.csv").is_file():
        start = time.process_time()
        result = build_task(builder, args.tasks_dir, default_data_dir(), mode=args.mode)
        print(
            f"built {result.directory}: {result.clips} clips in {time.process_time() - start:.0f} CPU-s"
        )
    return folder


def run_config(condition: str, seed: int, args: argparse.Namespace) -> SheetTrainConfig:
    model = SheetModelConfig(audio_encoder=args.audio_encoder, image_encoder=args.image_encoder)
    ssl = StageConfig(cpu_minutes=args.ssl_minutes, batch_size=args.batch_size)
    minutes = args.finetune_minutes
    if condition == "no_ssl_long":
        minutes += 2 * args.ssl_minutes
    return SheetTrainConfig(
        model=model,
        seed=seed,
        ssl_audio=ssl if condition == "ssl" else None,
        ssl_image=ssl if condition == "ssl" else None,
        finetune=StageConfig(cpu_minutes=minutes, batch_size=args.batch_size),
    )


def run_one(condition: str, seed: int, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    out = args.work / f"{condition}-seed{seed}.json"
    if out.is_file():
        return dict(json.loads(out.read_text()))
    train, valid, test = (read_sheet_pairs(folder, split) for split in ("train", "valid", "test"))
    config = run_config(condition, seed, args)
    start = time.process_time()
    if condition == "random":
        torch.manual_seed(seed)
        model = SheetModel(normalised_config(config.model, train, config.norm_clips)).eval()
        summary: dict[str, Any] = {}
    else:

        def validate(m: SheetModel) -> float:
            scores = sheet_retrieval(m, valid)
            return 0.5 * (scores["a2s_MRR"] + scores["s2a_MRR"])

        result = train_sheet(config, train, validate, log=lambda line: print(line, flush=True))
        model, summary = result.model, result.summary()
    train_cpu = time.process_time() - start
    model.save(args.work / f"{condition}-seed{seed}", condition=condition, seed=seed)
    record = {
        "condition": condition,
        "seed": seed,
        "test": sheet_retrieval(model, test),
        "test_snippets": len(test),
        "test_pieces": len(set(test.pieces)),
        "train_cpu_s": round(train_cpu, 1),
        "stages": summary,
    }
    args.work.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    return record


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tasks-dir", type=Path, default=ROOT / "tasks")
    p.add_argument("--mode", choices=("full", "small"), default="full")
    p.add_argument("--work", type=Path, default=ROOT / "results" / "sheet_retrieval")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--conditions", default=",".join(CONDITIONS), help=f"of {list(LABELS)}")
    p.add_argument("--ssl-minutes", type=float, default=3.0, help="CPU-minutes per tower (stage A)")
    p.add_argument("--finetune-minutes", type=float, default=4.0, help="CPU-minutes (stage B)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--audio-encoder", default="vit_tiny")
    p.add_argument("--image-encoder", default="sheet_cnn_tiny")
    args = p.parse_args()
    torch.set_num_threads(1)
    args.work, args.tasks_dir = args.work.resolve(), args.tasks_dir.resolve()
    print("$ " + shlex.join([Path(sys.executable).name, *sys.argv]), flush=True)
    folder = task_dir(args)
    seeds = [int(s) for s in args.seeds.split(",")]
    conditions = [c for c in args.conditions.split(",") if c]
    unknown = [c for c in conditions if c not in LABELS]
    if unknown:
        p.error(f"unknown conditions {unknown}; expected some of {list(LABELS)}")
    runs: dict[str, list[dict[str, Any]]] = {}
    for condition in conditions:
        for seed in seeds:
            record = run_one(condition, seed, folder, args)
            runs.setdefault(condition, []).append(record)
            print(f"{condition} seed {seed}: {json.dumps(record['test'])}", flush=True)
    first = next(iter(runs.values()))[0]
    n, pieces = first["test_snippets"], first["test_pieces"]
    print(
        f"\nsheet_snippets test split ({n} snippets, {pieces} pieces, held-out composers); "
        f"seeds {args.seeds}; stage A {args.ssl_minutes:g} CPU-min per tower, stage B "
        f"{args.finetune_minutes:g} CPU-min; {args.audio_encoder} + {args.image_encoder}, "
        "one CPU thread\n"
    )
    print("| condition | train CPU-min | " + " | ".join(c[1] for c in COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for condition, records in runs.items():
        minutes = cell([r["train_cpu_s"] / 60 for r in records])
        cells = [cell([r["test"][key] for r in records]) for key, _ in COLUMNS]
        print(f"| {LABELS[condition]} | {minutes} | " + " | ".join(cells) + " |")
    chance = chance_levels(n, pieces)
    print("| chance | – | " + " | ".join(f"{chance[key]:.3f}" for key, _ in COLUMNS) + " |")


if __name__ == "__main__":
    main()
