"""echoic's ``hear`` protocol against hear-eval-kit 2021.1.3's own downstream runner, on the same
vectors, with the CPU cost of both.

For each model: (a) the task's embeddings are computed once into echoic's cache (or read from it),
(b) written in hear-eval-kit's downstream layout (``echoic.evaluate.heareval_export``, rows in the
order hear-eval-kit's embedding step writes them), (c) ``python -m heareval.predictions.runner``
(in a separate reference venv) and ``echoic eval --protocol hear --threads 1 --jobs 1`` (reading the
same cache through ``--cached-model``) are started together, side by side, one torch thread each on
the CPU, and each is timed by the operating system's accounting of the finished child (CPU seconds
= user + sys, from ``wait4``), (d) printed: per-fold test scores of both, the mean difference
against the spread over folds, the chosen grid points, and the CPU-seconds ratio, with the CPU model
and its flags. Both run 1 seed, 8 grid points of the same 16-point grid, hear-eval-kit's defaults.

hear-eval-kit is **not** a dependency of echoic (it pins numpy 1.19, Lightning < 2 and
TensorFlow); it lives in a throwaway venv outside the repository. The recipe that works with this
repository's torch (CPU wheel from local disk)::

    python3 -m venv /tmp/heareval-venv
    /tmp/heareval-venv/bin/pip install --no-deps heareval==2021.1.3
    /tmp/heareval-venv/bin/pip install torch==2.13.0 pytorch-lightning==1.9.5 numpy==1.26.4 \\
        'setuptools<81' torchmetrics==0.11.4 sed_eval dcase_util scikit-learn pandas tqdm click \\
        more-itertools torchinfo scipy

(``--no-deps`` skips heareval's pins of numpy 1.19.2, numba 0.48 and TensorFlow, which only its
embedding step imports; ``more-itertools`` and ``torchinfo`` are imported by its predictions
module; ``setuptools<81`` keeps the ``pkg_resources`` Lightning 1.9 imports.) The runner is
started with ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``: its checkpoints hold torch classes and
functions as hyper-parameters, which torch ≥ 2.6's ``weights_only`` loading refuses. Scene tasks
run as released. Event tasks do not on Lightning 1.9.5: hear-eval-kit sets
``trainer.fit_loop.current_epoch`` before testing to pick the best epoch's post-processing, which
Lightning 1.9 ignores, so the test step looks up the last epoch and fails with a ``KeyError``.

``--protocol hear-fast`` runs echoic's ``hear-fast`` instead, against the same hear-eval-kit run
(its CPU-seconds ratio is hear-fast's saving over the reference implementation).

Run (the two models one after the other; each pair side by side)::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_heareval.py \\
        --task tasks/esc50-v1.0.0-full --model logmel_stats --model echoic-tiny

Work files go to ``--work`` (default ``results/heareval-bench``): ``cache/`` (echoic's embedding
cache), ``heareval/<model>/<task>/`` (the export, where hear-eval-kit also writes its results and
logs), ``echoic/`` (echoic's result JSON) and ``logs/`` (both programs' output).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from echoic.evaluate.cache import embed_task, slug
from echoic.evaluate.heareval_export import export_task
from echoic.evaluate.task import load_task

RECIPE = """\
  python3 -m venv {venv}
  {venv}/bin/pip install --no-deps heareval==2021.1.3
  {venv}/bin/pip install torch==2.13.0 pytorch-lightning==1.9.5 numpy==1.26.4 'setuptools<81' \\
      torchmetrics==0.11.4 sed_eval dcase_util scikit-learn pandas tqdm click more-itertools \\
      torchinfo scipy
(outside the repository: hear-eval-kit is never a dependency of echoic; see this script's docstring)"""

ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "CUDA_VISIBLE_DEVICES": "",  # both on the CPU
}


def reference_env() -> dict[str, str]:
    return {**os.environ, **ONE_THREAD, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}


def check_reference(venv: Path) -> str | None:
    """None when ``venv`` runs hear-eval-kit's predictions runner, else what is wrong."""
    python = venv / "bin" / "python"
    if not python.is_file():
        return f"no reference venv at {venv} (expected {python})"
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import heareval, heareval.predictions.runner, torch; "
            "print(heareval.__version__, torch.__version__, torch.get_num_threads())",
        ],
        env=reference_env(),
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["(no output)"])[-1]
        return f"{python} cannot import heareval's predictions runner: {last}"
    version = probe.stdout.split()[0]
    if version != "2021.1.3":
        return f"{venv} has heareval {version}; expected 2021.1.3"
    return None


def cpu_description() -> str:
    text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    name = re.search(r"^Model name:\s*(.+)$", text, re.M)
    cpus = re.search(r"^CPU\(s\):\s*(\d+)", text, re.M)
    flags = set((re.search(r"^Flags:\s*(.+)$", text, re.M) or ["", ""])[1].split())
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
    shown = ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in wanted)
    return (
        f"CPU: {name.group(1) if name else '?'}, {cpus.group(1) if cpus else '?'} CPUs; {shown}; "
        f"load average {os.getloadavg()[0]:.2f} at start"
    )


def run_side_by_side(
    commands: dict[str, tuple[list[str], dict[str, str], Path]], logs: Path
) -> dict[str, dict[str, float]]:
    """Start every command at once; per command: exit code, wall s, user + sys CPU s, peak RSS."""
    logs.mkdir(parents=True, exist_ok=True)
    procs: dict[int, tuple[str, subprocess.Popen, float]] = {}
    handles = []
    for name, (argv, env, cwd) in commands.items():
        fh = (logs / f"{name}.log").open("w")
        handles.append(fh)
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT)
        procs[proc.pid] = (name, proc, time.perf_counter())
    out: dict[str, dict[str, float]] = {}
    while len(out) < len(procs):
        pid, status, usage = os.wait4(-1, 0)
        if pid not in procs:
            continue
        name, proc, start = procs[pid]
        proc.returncode = os.waitstatus_to_exitcode(status)
        out[name] = {
            "rc": proc.returncode,
            "wall": time.perf_counter() - start,
            "cpu": usage.ru_utime + usage.ru_stime,
            "user": usage.ru_utime,
            "sys": usage.ru_stime,
            "max_rss_mib": usage.ru_maxrss / 1024,
        }
        print(
            f"  {name} finished: exit {proc.returncode}, {out[name]['wall']:.1f} s wall, "
            f"{out[name]['cpu']:.1f} CPU s",
            flush=True,
        )
    for fh in handles:
        fh.close()
    return out


def heareval_scores(directory: Path, metric: str) -> tuple[dict[str, float], dict[str, Any]]:
    result = json.loads((directory / "test.predicted-scores.json").read_text())
    folds = {
        k: float(v[f"test_{metric}"])
        for k, v in result.items()
        if isinstance(v, dict) and f"test_{metric}" in v
    }
    # Lightning's checkpoint epoch is 0-based; echoic counts epochs from 1
    epochs = {
        k: int(v["epoch"]) + 1 for k, v in result.items() if isinstance(v, dict) and "epoch" in v
    }
    hp = result.get("hparams", {})
    init = re.search(r"xavier_\w+?_", str(hp.get("initialization", "")))
    chosen = {
        "hidden_layers": hp.get("hidden_layers"),
        "initialization": init.group(0).rstrip("_") if init else hp.get("initialization"),
        "lr": hp.get("lr"),
        "epochs": epochs,
    }
    return folds, chosen


def echoic_scores(path: Path, metric: str) -> tuple[dict[str, float], dict[str, Any]]:
    record = json.loads(path.read_text())
    folds = {r["fold"]: float(r["test"][metric]) for r in record["runs"] if r["seed"] == 0}
    hp = record["hparams"]
    chosen = {
        "hidden_layers": hp.get("hidden_layers"),
        "initialization": hp.get("initialization"),
        "lr": hp.get("lr"),
        "epochs": {r["fold"]: int(r["best_epoch"]) for r in record["runs"] if r["seed"] == 0},
    }
    return folds, chosen


def bench_model(args: argparse.Namespace, name: str, task_dir: Path) -> None:
    from echoic.zoo.registry import resolve_model

    task = load_task(task_dir)
    work = Path(args.work).resolve()
    cache = Path(args.cache).resolve() if args.cache else work / "cache"
    model = resolve_model(name)
    identity = model.identity
    emb = embed_task(model, task, cache, identity, progress=False)
    del model
    gc.collect()
    dims = next(iter(emb.splits.values())).x.shape[1]
    export_dir = work / "heareval" / slug(name) / task.path.name
    export_task(task, emb, export_dir, identity=identity)
    echoic_out = work / ("echoic" if args.protocol == "hear" else f"echoic-{args.protocol}")
    metric = task.metrics[0]
    print(
        f"\n== {name} on {task.name}: {sum(s.x.shape[0] for s in emb.splits.values())} clips x "
        f"{dims} dims, {len(task.fold_plans())} folds; primary metric {metric}; identity "
        f"{identity}",
        flush=True,
    )
    venv_python = str(Path(args.venv) / "bin" / "python")
    commands = {
        "heareval": (
            [
                venv_python,
                "-m",
                "heareval.predictions.runner",
                str(export_dir),
                "--grid-points",
                str(args.grid_points),
            ],
            reference_env(),
            export_dir.parent,
        ),
        "echoic": (
            [
                sys.executable,
                "-m",
                "echoic.cli.main",
                "eval",
                "--cached-model",
                f"{name}={emb.directory.parent.parent}",
                "--tasks",
                str(task.path),
                "--protocol",
                args.protocol,
                "--seeds",
                "1",
                "--grid-points",
                str(args.grid_points),
                "--threads",
                "1",
                "--jobs",
                "1",
                "--device",
                "cpu",
                "--out",
                str(echoic_out),
                "--no-report",
                "--no-resume",
                "--quiet",
            ],
            {**os.environ, **ONE_THREAD},
            Path.cwd(),
        ),
    }
    timing = run_side_by_side(commands, work / "logs" / slug(name))
    failed = [k for k, t in timing.items() if t["rc"] != 0]
    if failed:
        for k in failed:
            print(
                f"  {k} failed (exit {timing[k]['rc']}); see {work / 'logs' / slug(name) / k}.log"
            )
        return
    ref, ref_hp = heareval_scores(export_dir, metric)
    ours, our_hp = echoic_scores(
        echoic_out / slug(name) / f"{task.name}.{args.protocol}.json", metric
    )
    folds = sorted(set(ref) & set(ours))
    print(
        f"\n  {'fold':8s} {'heareval':>9s} {'echoic':>9s} {'diff':>8s}   best epoch heareval/echoic"
    )
    for f in folds:
        print(
            f"  {f:8s} {ref[f]:9.4f} {ours[f]:9.4f} {ours[f] - ref[f]:+8.4f}   "
            f"{ref_hp['epochs'].get(f, '?')}/{our_hp['epochs'].get(f, '?')}"
        )
    r, e = [ref[f] for f in folds], [ours[f] for f in folds]
    d = [b - a for a, b in zip(r, e, strict=True)]
    sd_r, sd_e = statistics.stdev(r), statistics.stdev(e)
    mean_d = statistics.fmean(d)
    se_d = statistics.stdev(d) / math.sqrt(len(d))
    pooled = math.sqrt((sd_r**2 + sd_e**2) / 2)

    def ratio(a: float, b: float) -> str:
        return f"{a / b:+.2f}" if b > 0 else "n/a"

    print(
        f"  {'mean':8s} {statistics.fmean(r):9.4f} {statistics.fmean(e):9.4f} {mean_d:+8.4f}\n"
        f"  {'fold std':8s} {sd_r:9.4f} {sd_e:9.4f}\n"
        f"  mean difference echoic - heareval {mean_d:+.4f} = {ratio(mean_d, pooled)} x the fold "
        f"std ({pooled:.4f}); paired: std of the differences {statistics.stdev(d):.4f}, standard "
        f"error of the mean difference {se_d:.4f} ({ratio(mean_d, se_d)} SE)"
    )
    for side, hp in (("heareval", ref_hp), ("echoic", our_hp)):
        print(
            f"  chosen grid point ({side}): {hp['hidden_layers']} hidden layer(s), "
            f"{hp['initialization']}, lr {hp['lr']}"
        )
    h, o = timing["heareval"], timing["echoic"]
    print(
        f"  heareval: {h['wall']:8.1f} s wall {h['cpu']:8.1f} CPU s (user {h['user']:.1f} + sys "
        f"{h['sys']:.1f}), peak RSS {h['max_rss_mib']:.0f} MiB\n"
        f"  echoic:   {o['wall']:8.1f} s wall {o['cpu']:8.1f} CPU s (user {o['user']:.1f} + sys "
        f"{o['sys']:.1f}), peak RSS {o['max_rss_mib']:.0f} MiB\n"
        f"  CPU seconds heareval / echoic: {h['cpu'] / o['cpu']:.2f}x; "
        f"wall heareval / echoic: {h['wall'] / o['wall']:.2f}x",
        flush=True,
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--task", required=True, help="a HEAR task folder (e.g. tasks/esc50-v1.0.0-full)"
    )
    p.add_argument("--model", action="append", required=True, help="echoic model name (repeatable)")
    p.add_argument(
        "--venv", default="/tmp/heareval-venv", help="the reference venv (hear-eval-kit)"
    )
    p.add_argument("--work", default="results/heareval-bench", help="work folder")
    p.add_argument("--cache", default=None, help="embedding cache (default: WORK/cache)")
    p.add_argument("--grid-points", type=int, default=8, help="grid points of 16 (default 8)")
    p.add_argument(
        "--protocol",
        default="hear",
        choices=("hear", "hear-fast"),
        help="echoic's side: the faithful protocol (default) or hear-fast, against hear-eval-kit",
    )
    args = p.parse_args()

    problem = check_reference(Path(args.venv))
    if problem:
        print(
            f"bench_heareval: {problem}.\nCreate the reference venv with:\n"
            + RECIPE.format(venv=args.venv)
            + "\nor point --venv at one.",
            file=sys.stderr,
        )
        return 2
    task_dir = Path(args.task)
    if not (task_dir / "task_metadata.json").is_file():
        print(
            f"bench_heareval: {task_dir} is not a HEAR task folder (no task_metadata.json); "
            "build tasks with `echoic tasks build --out tasks/`",
            file=sys.stderr,
        )
        return 2
    threads = subprocess.run(
        [
            str(Path(args.venv) / "bin" / "python"),
            "-c",
            "import torch; print(torch.get_num_threads(), torch.__version__)",
        ],
        env=reference_env(),
        capture_output=True,
        text=True,
    ).stdout.split()
    print(cpu_description())
    print(
        f"threads: hear-eval-kit torch {threads[0]} (OMP_NUM_THREADS=1, torch {threads[1]}, "
        "DataLoader workers 0), echoic --threads 1 --jobs 1; the two run side by side, "
        f"1 seed, {args.grid_points} grid points, CPU"
    )
    for name in args.model:
        bench_model(args, name, task_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
