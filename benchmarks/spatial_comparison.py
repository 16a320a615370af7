"""What spatial input buys (GRAM, issue 20): the spatial MAE encoder vs the same architecture
and objective on the channel mean vs ``logmel_stats`` per channel, on the spatial tasks, HEAR
protocol.

    echoic corpus build --out corpus_spatial --sources binaural_scenes --tasks-dir tasks
    echoic corpus build --out corpus_foa --sources foa_scenes --tasks-dir tasks
    python benchmarks/spatial_comparison.py --seeds 0,1,2 --cpu-minutes 5 --work results/spatial

Rows (:data:`ROWS`): ``spatial_mae`` (``configs/pretrain/spatial_mae_tiny.yaml``: binaural
``spatial_logmel``, 5 input channels) and ``spatial_mae_foa`` (``spatial_mae_foa_tiny.yaml``:
first-order ambisonics, 7 input channels); ``spatial_mae_mono`` (``spatial_mae_mono_tiny.yaml``:
the same objective and encoder on the channel mean of the binaural corpus); ``random_spatial`` /
``random_spatial_foa`` (those recipes' encoders untrained); ``logmel_stats`` (the channel mean),
``logmel_stats_2ch`` / ``logmel_stats_4ch`` (each channel). Every pretrained row trains at the
same CPU budget (``trainer.max_cpu_minutes``, one thread; :mod:`method_leaderboard` does the
training: resumable, ``max_steps`` from a measured timing) for each pretraining seed, on corpora
of 3,000 rendered 3-s scenes (``binaural_scenes`` through the KEMAR head only, so the tasks' valid
and test heads are never heard; ``foa_scenes``). Each model: ``echoic eval --protocol hear
--seeds N`` on ``localisation_binaural`` (top-1 of 8 azimuth sectors and the mean azimuth error in
degrees) and ``rt60_binaural`` (top-1 of 3 RT60 bins), or ``localisation_foa``; mono models on all
three. Printed: mean over pretraining seeds ± their std (a no-training row: ± over probe seeds,
as ``echoic eval`` reports it).
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

import method_leaderboard as lb

ROOT = Path(__file__).resolve().parents[1]
BINAURAL = ("localisation_binaural", "rt60_binaural")
FOA = ("localisation_foa",)
COLUMNS = (
    ("localisation_binaural", "top1_acc", "binaural azimuth top-1"),
    ("localisation_binaural", "azimuth_mae_deg", "binaural azimuth error (°)"),
    ("rt60_binaural", "top1_acc", "RT60 top-1"),
    ("localisation_foa", "top1_acc", "FOA azimuth top-1"),
    ("localisation_foa", "azimuth_mae_deg", "FOA azimuth error (°)"),
)
# model → (pretrained?, the corpus it trains on, the tasks it reads)
ROWS = {
    "logmel_stats": (False, "", BINAURAL + FOA),
    "logmel_stats_2ch": (False, "", BINAURAL),
    "logmel_stats_4ch": (False, "", FOA),
    "random_spatial": (True, "binaural", BINAURAL),
    "spatial_mae_mono": (True, "binaural", BINAURAL + FOA),
    "spatial_mae": (True, "binaural", BINAURAL),
    "random_spatial_foa": (True, "foa", FOA),
    "spatial_mae_foa": (True, "foa", FOA),
}


def scores(results: Path) -> dict[tuple[str, str], tuple[float, float]]:
    with results.open() as f:
        return {
            (r["task"], r["metric"]): (float(r["mean"]), float(r["std"] or 0.0))
            for r in csv.DictReader(f)
        }


def evaluate_all(
    model: Path | str, name: str, tasks: tuple[str, ...], args: argparse.Namespace
) -> dict[tuple[str, str], tuple[float, float]]:
    """HEAR scores of ``model`` on ``tasks``: binaural and FOA tasks in separate evaluations
    (``NAME`` and ``NAME@foa``), so a row can gain the other format later."""
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for group, suffix in ((BINAURAL, ""), (FOA, "@foa")):
        chosen = [args.tasks_dir / f"{t}-v1.0.0-full" for t in tasks if t in group]
        if chosen:
            results = lb.evaluate(
                model, name + suffix, "hear", args.work, chosen, args.jobs, args.probe_seeds
            )
            out.update(scores(results))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--corpus", type=Path, default=ROOT / "corpus_spatial" / "manifest.csv")
    p.add_argument("--foa-corpus", type=Path, default=ROOT / "corpus_foa" / "manifest.csv")
    p.add_argument("--tasks-dir", type=Path, default=ROOT / "tasks")
    p.add_argument("--work", type=Path, default=ROOT / "results" / "spatial")
    p.add_argument("--seeds", default="0,1,2", help="pretraining seeds")
    p.add_argument("--probe-seeds", type=int, default=3, help="HEAR probe seeds per model")
    p.add_argument("--cpu-minutes", type=float, default=5.0)
    p.add_argument("--methods", default=",".join(ROWS))
    p.add_argument("--jobs", default="auto", help="echoic eval --jobs")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="print the table of what is finished; run nothing",
    )
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    args.work, args.tasks_dir = args.work.resolve(), args.tasks_dir.resolve()  # run in ROOT
    corpora = {"binaural": args.corpus.resolve(), "foa": args.foa_corpus.resolve()}
    rows: dict[str, list[dict[tuple[str, str], tuple[float, float]]]] = {}
    for method in args.methods.split(","):
        trained, corpus, tasks = ROWS[method]
        if not trained:
            rows[method] = [evaluate_all(method, method, tasks, args)]
            continue
        for seed in seeds:
            if args.report_only:  # every evaluation of this run must be there
                names = [f"{method}-seed{seed}" + ("" if set(tasks) & set(BINAURAL) else "@foa")]
                if set(tasks) & set(BINAURAL) and set(tasks) & set(FOA):
                    names.append(f"{method}-seed{seed}@foa")
                done = args.work / "eval" / "hear"
                if not all((done / n / "results.csv").exists() for n in names):
                    continue
            model = lb.train(method, seed, args.work, corpora[corpus], args.cpu_minutes)
            rows.setdefault(method, []).append(
                evaluate_all(model, f"{method}-seed{seed}", tasks, args)
            )
            print(f"{method} seed {seed}: done", flush=True)
    print(
        f"\n{args.cpu_minutes:g} CPU-minutes per pretraining run, seeds {args.seeds}, HEAR "
        f"protocol with {args.probe_seeds} probe seeds\n"
    )
    print("| model | runs | " + " | ".join(c[2] for c in COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for method, runs in rows.items():
        cells = []
        for task, metric, _ in COLUMNS:
            values = [r[(task, metric)] for r in runs if (task, metric) in r]
            if not values:
                cells.append("–")
                continue
            mean = statistics.mean(v[0] for v in values)
            spread = statistics.stdev(v[0] for v in values) if len(values) > 1 else values[0][1]
            digits = 1 if metric.endswith("_deg") else 3
            cells.append(f"{mean:.{digits}f} ± {spread:.{digits}f}")
        print(f"| {method} | {len(runs)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
