"""The equal-compute method leaderboard (docs/methods.md): every SSL objective on the same encoder
size, corpus and CPU budget, scored linear + kNN on the nine real tasks, 3 pretraining seeds,
beside a random-init row.

    python benchmarks/method_leaderboard.py --methods random,mae,eat,ssast \\
        --cpu-minutes 8 --seeds 0,1,2 --corpus corpus/manifest.csv --work results/methods \\
        --write docs/methods.md

Per method: ``configs/pretrain/<method>_tiny.yaml``. ``trainer.max_steps`` comes from a measured
timing (CPU seconds per step = the difference of a 4-step and a 16-step run, so start-up cancels),
so that the cosine schedule ends inside the budget; ``trainer.max_cpu_minutes`` stops the run in
any case. Each seed trains with ``--trainer.threads 1``; the random row exports the recipe's
encoder untrained (seeded). Each model is scored with ``echoic eval --protocol linear`` and
``--protocol knn`` (one probe seed: the spread reported is over pretraining seeds). Every step
is resumable: a finished run, export or evaluation is skipped on the next call.

The work folder (checkpoints, caches, evaluations) is scratch and gitignored; what the tables are
made of is committed: one small JSON record per (method, seed) and one calibration per method in
``benchmarks/records/methods/``. A fresh checkout therefore keeps every finished row and the
``max_steps`` each method trains with, and the tables in docs/methods.md are rebuilt from the
records alone (tests/test_method_records.py checks that the two agree). Two jobs with disjoint
``--methods`` fill two cores; run them without ``--write`` and rebuild the doc afterwards:

    python benchmarks/method_leaderboard.py --tables-only --seeds 0,1,2 --write docs/methods.md
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ECHOIC = [sys.executable, "-m", "echoic.cli.main"]
TASKS = [
    "arabic_speech_commands",
    "body_percussion",
    "drums",
    "esc50",
    "esc50_scenes",
    "fsdd_digits",
    "guitar_chords",
    "librispeech_sex",
    "librispeech_speakers",
]
FULL = list(TASKS)
SHORT = ["arabic", "body", "drums", "esc50", "event", "fsdd", "guitar", "sex", "speakers"]


def run(cmd: list[str], log: Path) -> float:
    """Run ``cmd`` (output to ``log``); return the CPU seconds it used (it and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    with log.open("a") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}; see {log}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


RECORDS = ROOT / "benchmarks" / "records" / "methods"
# every row of docs/methods.md, in table order (methods without records are left out)
ORDER = [
    "random", "random_wav", "random_cnn", "mae", "eat", "eat_patchout", "ssast", "ssast_ssamba",
    "m2d", "byol_a", "tera", "data2vec2", "wavjepa", "asit", "beats", "hubert", "mert", "spear",
    "unfused",
]  # fmt: skip
# The budget is fixed in steps: the calibration turns ``--cpu-minutes`` into ``max_steps`` once, on
# one machine, and every seed trains exactly those steps, so a slower or busier CPU later spends
# more CPU seconds on the same work instead of training less. ``max_cpu_minutes`` stays as a cap
# against a runaway run, at this multiple of the budget.
CPU_CAP = 3.0
SIZE = "tiny"
# random-initialisation rows: the encoder and frontend of this method's recipe, untrained
RANDOM = {
    "random": "mae",
    "random_wav": "hubert",
    "random_cnn": "byol_a",
    "random_spatial": "spatial_mae",
    "random_spatial_foa": "spatial_mae_foa",
}  # vit_tiny, wav_tiny, byol_a CNN, vit_tiny on binaural / FOA spatial_logmel


def recipe(method: str) -> Path:
    path = ROOT / "configs" / "pretrain" / f"{RANDOM.get(method, method)}_{SIZE}.yaml"
    if not path.exists():
        raise SystemExit(
            f"no recipe {path}: each method needs configs/pretrain/<method>_{SIZE}.yaml"
        )
    return path


def pretrain_cmd(method: str, out: Path, seed: int, corpus: Path, extra: list[str]) -> list[str]:
    return [
        *ECHOIC, "pretrain", "--config", str(recipe(method)), "--seed", str(seed),
        "--output_dir", str(out), "--export_dir", str(out / "model"),
        "--data.train", f"[{corpus}]", "--trainer.threads", "1",
        "--trainer.progress_bar", "false", *extra,
    ]  # fmt: skip


def calibrate(method: str, work: Path, corpus: Path, minutes: float) -> dict[str, float]:
    """CPU seconds per step (two short runs) and the max_steps that fit the budget."""
    path = work / method / "calibration.json"
    recorded = RECORDS / f"{method}-calibration.json"
    if path.exists():
        return json.loads(path.read_text())
    if SIZE == "tiny" and recorded.exists():  # measured once, kept for every seed and checkout
        path.parent.mkdir(parents=True, exist_ok=True)
        text = recorded.read_text()
        path.write_text(text)
        return json.loads(text)
    cpu = {}
    for steps in (4, 16):
        out = work / method / f"calibrate-{steps}"
        extra = ["--trainer.max_steps", str(steps), "--trainer.checkpoint_every_n_steps", "1000"]
        cpu[steps] = run(pretrain_cmd(method, out, 0, corpus, extra), work / method / "log.txt")
    per_step = max((cpu[16] - cpu[4]) / 12, 1e-3)
    startup = max(cpu[4] - 4 * per_step, 0.0)
    steps = int((minutes * 60 - startup) * 0.95 / per_step)
    result = {"cpu_s_per_step": per_step, "startup_cpu_s": startup, "max_steps": steps}
    path.write_text(json.dumps(result, indent=1))
    if SIZE == "tiny":
        RECORDS.mkdir(parents=True, exist_ok=True)
        recorded.write_text(json.dumps({**result, "cpu": cpu_name()}, indent=1) + "\n")
    return result


def train(method: str, seed: int, work: Path, corpus: Path, minutes: float) -> Path:
    out = work / method / f"seed{seed}"
    model = out / "model"
    if (model / "config.json").exists():
        return model
    out.mkdir(parents=True, exist_ok=True)
    if method in RANDOM:  # the recipe's encoder and frontend at a seeded initialisation
        code = (
            "import sys, torch; from echoic.train.config import load_config; "
            "from echoic.train.module import PretrainModule; "
            "from echoic.train.export import export_state; "
            "c = load_config(sys.argv[1], ['--seed', sys.argv[2]]); torch.manual_seed(c.seed); "
            "m = PretrainModule(c); "
            "export_state(m.state_dict(), m.model_config, sys.argv[3], 0, None, "
            "{'origin': 'random init (method_leaderboard.py)'})"
        )
        cmd = [sys.executable, "-c", code, str(recipe(method)), str(seed), str(model)]
        cpu = run(cmd, out / "log.txt")
        (out / "train.json").write_text(json.dumps({"cpu_s": cpu, "wall_s": 0.0}, indent=1))
        return model
    else:
        cal = calibrate(method, work, corpus, minutes)
        extra = [
            "--trainer.max_steps", str(cal["max_steps"]),
            "--trainer.max_cpu_minutes", str(minutes * CPU_CAP),
        ]  # fmt: skip
        if (out / "checkpoints" / "last.ckpt").exists():
            extra += ["--resume", "auto"]
    start = time.monotonic()
    before = {"cpu_s": 0.0, "wall_s": 0.0}  # a resumed run adds to what the stopped one used
    if (out / "train.json").exists():
        before = json.loads((out / "train.json").read_text())
    cpu = run(pretrain_cmd(method, out, seed, corpus, extra), out / "log.txt")
    spent = {"cpu_s": before["cpu_s"] + cpu, "wall_s": before["wall_s"] + time.monotonic() - start}
    (out / "train.json").write_text(json.dumps(spent, indent=1))
    return model


def evaluate(
    model: Path | str,
    name: str,
    protocol: str,
    work: Path,
    tasks: list[Path],
    jobs: str = "auto",
    probe_seeds: int = 1,
) -> Path:
    """``echoic eval`` of ``model`` (a directory or a card name) into ``work/eval/protocol/name``."""
    out = work / "eval" / protocol / name
    if (out / "results.csv").exists():
        return out / "results.csv"
    cmd = [
        *ECHOIC, "eval", "--model", str(model), "--tasks", *map(str, tasks),
        "--protocol", protocol, "--seeds", str(probe_seeds), "--threads", "1", "--jobs", jobs,
        "--cache", str(work / "cache"), "--out", str(out), "--quiet", "--no-report",
    ]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    run(cmd, out / "log.txt")
    return out / "results.csv"


def primary_scores(results: Path) -> dict[str, float]:
    with results.open() as f:
        rows = [r for r in csv.DictReader(f) if r["primary"] == "1"]
    return {r["task"]: float(r["mean"]) for r in rows}


def cpu_name() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    names = [ln.split(":", 1)[1].strip() for ln in out.splitlines() if "Model name" in ln]
    return names[0] if names else "?"


def save_record(
    work: Path, method: str, seed: int, protocols: list[str], folder: Path = RECORDS
) -> Path:
    """The committed record of one finished (method, seed): steps, training CPU, primary scores."""
    scores = {
        protocol: primary_scores(work / "eval" / protocol / f"{method}-seed{seed}" / "results.csv")
        for protocol in protocols
    }
    record: dict[str, object] = {"method": method, "seed": seed, "steps": 0, "train_cpu_s": 0.0}
    if method not in RANDOM:  # the steps the exported model trained (the CPU budget may cut)
        config = json.loads((work / method / f"seed{seed}" / "model" / "config.json").read_text())
        record["steps"] = int(config["model"]["step"])
        record["max_steps"] = json.loads((work / method / "calibration.json").read_text())[
            "max_steps"
        ]
        train_json = work / method / f"seed{seed}" / "train.json"
        record["train_cpu_s"] = round(json.loads(train_json.read_text())["cpu_s"], 1)
    record |= {
        "scores": {p: {t: round(v, 6) for t, v in sorted(s.items())} for p, s in scores.items()},
        "cpu": cpu_name(),
        "date": time.strftime("%Y-%m-%d"),
        "source": "benchmarks/method_leaderboard.py",
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{method}-seed{seed}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def load_records(folder: Path = RECORDS) -> dict[tuple[str, int], dict]:
    records = {}
    for path in sorted(folder.glob("*-seed*.json")):
        r = json.loads(path.read_text())
        records[(r["method"], int(r["seed"]))] = r
    return records


def table(records: dict[tuple[str, int], dict], seeds: list[int], tasks: list[str]) -> str:
    """Both tables (linear, kNN) of docs/methods.md from the records: mean over the seeds found,
    ± the standard deviation of the nine-task average over those seeds."""
    lines = []
    short = [SHORT[FULL.index(t)] if t in FULL else t for t in tasks]
    methods = [m for m in ORDER if any(k[0] == m for k in records)]
    methods += sorted({k[0] for k in records} - set(methods))
    for protocol in ("linear", "knn"):
        lines += [
            f"### {protocol}",
            "",
            "| method | steps | CPU-min | average | " + " | ".join(short) + " |",
            "|---|---|---|---|" + "---|" * len(short),
        ]
        for method in methods:
            found = [records[(method, s)] for s in seeds if (method, s) in records]
            per_seed = [r["scores"][protocol] for r in found if protocol in r["scores"]]
            if not per_seed:
                continue
            averages = [statistics.mean(s[t] for t in tasks) for s in per_seed]
            cells = [f"{statistics.mean(s[t] for s in per_seed):.3f}" for t in tasks]
            spread = statistics.stdev(averages) if len(averages) > 1 else 0.0
            steps, cpu = "0", "0"
            if method not in RANDOM:
                steps = "/".join(sorted({str(r["steps"]) for r in found}))
                cpu = f"{statistics.mean(r['train_cpu_s'] for r in found) / 60:.1f}"
            lines.append(
                f"| {method} | {steps} | {cpu} | {statistics.mean(averages):.3f} ± {spread:.3f} "
                f"(n={len(per_seed)}) | " + " | ".join(cells) + " |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--methods", default="random,mae,eat,ssast")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--cpu-minutes", type=float, default=8.0)
    p.add_argument("--corpus", type=Path, default=ROOT / "corpus" / "manifest.csv")
    p.add_argument("--tasks-dir", type=Path, default=ROOT / "tasks")
    p.add_argument("--work", type=Path, default=ROOT / "results" / "methods")
    p.add_argument("--protocols", default="linear,knn")
    p.add_argument(
        "--size", default="tiny", help="recipe size (test: a quick check of this script)"
    )
    p.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task names")
    p.add_argument("--train-only", action="store_true", help="pretrain, do not evaluate")
    p.add_argument("--first", default="", help="methods to run before the others (same tables)")
    p.add_argument(
        "--jobs",
        default="auto",
        help="evaluation processes (echoic eval --jobs; 1 beside other work)",
    )
    p.add_argument("--write", type=Path, default=None, help="write the tables into this file")
    p.add_argument(
        "--tables-only",
        action="store_true",
        help="train nothing: print (and --write) the tables from the records for --seeds",
    )
    args = p.parse_args()
    global SIZE
    SIZE = args.size
    methods, seeds = args.methods.split(","), [int(s) for s in args.seeds.split(",")]
    first = [m for m in args.first.split(",") if m]
    unknown = sorted(set(first) - set(methods))
    if unknown:
        raise SystemExit(f"--first names methods not in --methods: {', '.join(unknown)}")
    order = first + [m for m in methods if m not in first]  # the tables keep --methods' order
    TASKS[:] = args.tasks.split(",")
    # the committed records for the real leaderboard; a test-size or task-subset run keeps its own
    records = RECORDS if SIZE == "tiny" and TASKS == FULL else args.work / "records"
    tasks = [args.tasks_dir / f"{t}-v1.0.0-full" for t in TASKS]
    if not args.tables_only:  # --tables-only: the tables from the records, nothing run
        missing = [t for t in tasks if not t.is_dir()]
        if missing:
            raise SystemExit(f"task folders missing: {missing}; build them: echoic tasks build")
        if not args.corpus.exists():
            raise SystemExit(f"no corpus at {args.corpus}; build: echoic corpus build --out corpus")
        from _table import machine  # here: tests load this file without benchmarks/ on sys.path

        print(machine())
    for seed in [] if args.tables_only else seeds:  # seed by seed: a stop still covers every method
        for method in order:
            if not args.train_only and (records / f"{method}-seed{seed}.json").exists():
                print(f"{method} seed {seed}: recorded", flush=True)
                continue
            model = train(method, seed, args.work, args.corpus, args.cpu_minutes)
            print(f"{method} seed {seed}: {model}", flush=True)
            if args.train_only:
                continue
            protocols = args.protocols.split(",")
            for protocol in protocols:
                evaluate(model, f"{method}-seed{seed}", protocol, args.work, tasks, args.jobs)
                print(f"  {protocol} done", flush=True)
            path = save_record(args.work, method, seed, protocols, records)
            print(f"  record: {path}", flush=True)
            if args.write:  # after every method, so a stopped run leaves its rows in the doc
                write_table(args.write, table(load_records(records), seeds, TASKS))
    text = table(load_records(records), seeds, TASKS)
    print(text)
    if args.write:
        write_table(args.write, text)


def write_table(path: Path, text: str) -> None:
    """Replace the text between the leaderboard markers of ``path`` (append them if absent)."""
    marker = "<!-- leaderboard -->"
    doc = path.read_text() if path.exists() else marker + "\n"
    head, _, rest = doc.partition(marker)
    tail = rest.split("<!-- /leaderboard -->", 1)[1] if "<!-- /leaderboard -->" in rest else ""
    path.write_text(f"{head}{marker}\n{text}\n<!-- /leaderboard -->{tail}")


if __name__ == "__main__":
    main()
