"""CoLLAP vs mean-pooled chunks on 60-s+ renders (issue 23): text↔audio retrieval on held-out captions.

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/collap_long.py --seeds 0,1,2

Builds the ``music21_captions`` corpus into ``--corpus`` when it is not there (60-90 s renders of
music21 scores with generated captions; held out by piece, small composers whole), then trains,
for every seed, on its training split with ``echoic pretrain``'s loop, one CPU thread, the audio
tower **initialised from echoic-tiny and frozen** (``model.init``, ``model.freeze_encoder``) and
the frozen ``minilm`` text tower — as CoLLAP (Wu et al. 2025) trains on frozen pretrained
backbones, so only the heads (and the fusion) learn. Every condition sees the same ``--crop-s``
crops (60 s) cut into ``--chunk-s`` chunks (10 s), the same batches and the same steps:

* ``collap`` — ``collap`` trained with its text-conditioned attention fusion, scored with it
  (``echoic eval --protocol textretrieval --fusion``);
* ``collap_mean`` — the same ``collap`` models scored with their text-independent mean of chunk
  embeddings (``JointModel.embed_audio``);
* ``mean_pooled`` — ``collap`` with ``fusion: false``: clap's InfoNCE on the mean-pooled chunk
  embedding alone (the baseline CoLLAP compares against), scored the same way;
* ``untrained`` — the heads as the seed initialised them (one step at learning rate 0), for
  ``--control-seeds`` only (default seed 0: it is a chance-level control).

Scores: text→audio and audio→text R@1 / R@10 / mAP on the held-out renders (``heldout.csv``,
English captions), ``chance`` from 200 random rankings of the same relevance table. Runs go to
``WORK/<condition>-s<seed>/`` and scores to ``WORK/results/`` (a finished run or score is not
redone: the script resumes). Prints a markdown table, mean ± std over the seeds.
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np

from _table import cell
from echoic.cards import load
from echoic.corpus import CorpusContext, build_corpus
from echoic.data.captions import read_captions
from echoic.evaluate.textretrieval import caption_set, evaluate_text_retrieval, ranking_scores
from echoic.objectives.joint import is_joint_model
from echoic.train.config import load_config
from echoic.train.run import pretrain

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "music21_captions"
METRICS = (
    ("t2a_R@1", "t→a R@1"),
    ("t2a_R@10", "t→a R@10"),
    ("t2a_mAP", "t→a mAP"),
    ("a2t_R@1", "a→t R@1"),
    ("a2t_R@10", "a→t R@10"),
    ("a2t_mAP", "a→t mAP"),
)
ROWS = (
    ("collap", "CoLLAP: collap trained, scored with the text-conditioned fusion"),
    ("collap_mean", "the same collap models, scored with mean-pooled chunks (embed_audio)"),
    ("mean_pooled", "mean-pooled chunks trained (collap fusion: false = clap on g)"),
    ("untrained", "untrained heads (control)"),
)


def cpu_minutes() -> float:
    """CPU minutes of this process and its finished children (fluidsynth) so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime) / 60.0


def build(args: argparse.Namespace) -> Path:
    corpus = Path(args.corpus)
    if not (corpus / "summary.json").is_file():
        print(f"building {SOURCE} into {corpus} ({args.hours} h cap) ...", flush=True)
        ctx = CorpusContext(data_dir=corpus, max_hours=args.hours, seed=0)
        summary = build_corpus(corpus, [SOURCE], ctx, progress=False)
        if summary.failures:
            print(f"  {len(summary.failures)} renders failed, e.g. {summary.failures[:2]}")
    return corpus


def recipe(condition: str, seed: int, corpus: Path, folder: Path, args: argparse.Namespace) -> Any:
    tiny = load("echoic-tiny").config  # the frozen audio tower's architecture and features
    trained = condition != "untrained"
    return load_config(
        None,
        {
            "seed": seed,
            "output_dir": str(folder),
            "model": {
                "encoder": tiny.encoder,
                "encoder_config": dict(tiny.encoder_config),
                "frontend": tiny.frontend,
                "frontend_config": dict(tiny.frontend_config),
                "name": f"collap-long-{condition}-s{seed}",
                "init": "echoic-tiny",
                "freeze_encoder": True,
            },
            "objective": {
                "name": "collap",
                "config": {
                    "text": "minilm",
                    "text_config": {"train": "frozen"},
                    "pool": "mean",
                    "dim": 512,
                    "hidden": 512,
                    "attention_dim": 64,
                    "chunk_s": args.chunk_s,
                    "fusion": condition != "mean_pooled",
                    "mask_same_captions": True,
                    "head_norm": "batch",  # the frozen tower's pooled vectors share most of
                    # their direction (cosine ~0.97): without it 36 steps stay at chance
                    "time_masks": 0,  # about one epoch: nothing to regularise, and the
                    "freq_masks": 0,  # frozen tower's input stays the render it was given
                },
            },
            "data": {
                "train": [str(corpus)],
                "captions": True,
                "caption_langs": ["en"],
                "crop_s": args.crop_s,
                "batch_size": args.batch_size,
                "num_workers": 0,
            },
            "optim": {
                "lr": args.lr if trained else 0.0,
                "betas": [0.9, 0.98],
                "weight_decay": 0.05,
                "warmup_steps": args.warmup if trained else 1,
            },
            "trainer": {
                "max_steps": args.steps if trained else 1,
                "threads": 1,
                "gradient_clip_val": 4.0,
                "log_every_n_steps": 1,
                "checkpoint_every_n_steps": args.steps,
                "keep_checkpoints": 1,
                "progress_bar": False,
                "tensorboard": False,
            },
        },
    )


def train(condition: str, seed: int, corpus: Path, args: argparse.Namespace) -> Path:
    folder = Path(args.work) / f"{condition}-s{seed}"
    model = folder / "model"
    if is_joint_model(model):
        return model
    start = cpu_minutes()
    resume = "auto" if (folder / "checkpoints").is_dir() else None
    pretrain(recipe(condition, seed, corpus, folder, args), resume=resume)
    print(f"  trained {folder.name}: {cpu_minutes() - start:.1f} CPU-min", flush=True)
    return model


def chance(corpus: Path, draws: int = 200) -> dict[str, float]:
    """Mean scores of ``draws`` random rankings of the held-out relevance table."""
    data = caption_set(corpus, ["en"])
    rng = np.random.default_rng(0)
    totals: dict[str, list[float]] = {}
    for _ in range(draws):
        sim = rng.standard_normal(data.relevant.shape)
        for direction, s, rel in (("t2a", sim, data.relevant), ("a2t", sim.T, data.relevant.T)):
            for name, value in ranking_scores(s, rel).items():
                totals.setdefault(f"{direction}_{name}", []).append(value)
    return {k: float(np.mean(v)) for k, v in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="results/collap_long")
    parser.add_argument("--corpus", default="results/collap_long/corpus")
    parser.add_argument("--hours", type=float, default=6.5, help="corpus size cap")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=36)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--crop-s", type=float, default=60.0)
    parser.add_argument("--chunk-s", type=float, default=10.0)
    parser.add_argument(
        "--control-seeds", default="0", help="seeds of the untrained-heads control (chance-like)"
    )
    parser.add_argument("--build-only", action="store_true", help="build the corpus, then stop")
    args = parser.parse_args()
    print("$ " + shlex.join([Path(sys.executable).name, *sys.argv]), flush=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    corpus = build(args)
    train_clips, held = read_captions(corpus), read_captions(corpus, split="heldout")
    held_s = [c.duration_s for c in held]
    print(
        f"corpus {corpus}: {len(train_clips)} training renders, {len(held)} held out "
        f"({min(held_s):.0f}-{max(held_s):.0f} s), CPU so far {cpu_minutes():.1f} min",
        flush=True,
    )
    whole = sorted({c.group.rsplit("/", 1)[1] for c in held if "/composer/" in c.group})
    print(f"held out with their composer: {', '.join(whole) or 'none'}", flush=True)
    if args.build_only:
        return
    results = Path(args.work) / "results"
    scores: dict[str, list[dict[str, float]]] = {name: [] for name, _ in ROWS}
    controls = [int(s) for s in args.control_seeds.split(",") if s]
    for seed in sorted(set(seeds) | set(controls)):
        conditions = ["collap", "mean_pooled"] if seed in seeds else []
        conditions += ["untrained"] if seed in controls else []
        models = {c: train(c, seed, corpus, args) for c in conditions}
        quiet = {"langs": ["en"], "log": lambda _: None}
        for row, condition, fusion in (
            ("collap", "collap", True),
            ("collap_mean", "collap", False),
            ("mean_pooled", "mean_pooled", False),
            ("untrained", "untrained", False),
        ):
            model = models.get(condition)
            if model is None:
                continue
            (record,) = evaluate_text_retrieval(
                [str(model)], [corpus], results, fusion=fusion, **quiet
            )
            scores[row].append(record["runs"][0]["test"])
        print(f"  seed {seed} scored; CPU so far {cpu_minutes():.1f} min", flush=True)
    data = caption_set(corpus, ["en"])
    base = chance(corpus)
    print()
    print(
        f"{len(data.clips)} held-out renders, {len(data.texts)} distinct captions; "
        f"seeds {args.seeds} (control: {args.control_seeds}); {args.steps} steps of "
        f"{args.batch_size} × {args.crop_s:g}-s crops "
        f"in {args.chunk_s:g}-s chunks; total CPU {cpu_minutes():.1f} min"
    )
    print()
    print("| condition | " + " | ".join(label for _, label in METRICS) + " |")
    print("|---|" + "---|" * len(METRICS))
    for name, label in ROWS:
        values = [cell([s[m] for s in scores[name]]) for m, _ in METRICS]
        print(f"| {label} | " + " | ".join(values) + " |")
    print("| chance (random ranking) | " + " | ".join(f"{base[m]:.3f}" for m, _ in METRICS) + " |")
    (Path(args.work) / "table.json").write_text(
        json.dumps({"scores": scores, "chance": base, "args": vars(args)}, indent=1) + "\n"
    )


if __name__ == "__main__":
    main()
