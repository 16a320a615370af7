"""`make demo`: build real tasks, evaluate the default model and the baselines, write a report.

Run as ``python -m echoic.cli.demo [--out DIR]``. Steps:

1. Build the demo tasks from ``shared/data`` (and the Debian soundfonts) into ``DIR/tasks``;
   tasks already built are skipped (the build resumes an interrupted one).
2. Evaluate the default echoic model and every registered mono baseline (a baseline that needs an
   optional extra or a fitted file is skipped with one line saying why) with ``echoic eval``;
   embeddings are cached in ``DIR/results/cache``, so a second run only re-trains probes.
3. Print the table (mean ± std over folds × seeds) and the path of ``DIR/results/report.html``.

Demo defaults, chosen to keep the first run under ~20 minutes on 2 CPU cores (measured in
docs/evaluation.md): nine of the eleven tasks, leaving out the two made of thousands of 1-s clips
(Arabic speech commands, spoken digits; ``--tasks all`` adds them), and the
``linear`` probe with 3 seeds (``--protocol hear`` runs hear-eval-kit's MLP grid, which costs
minutes per task and model on a CPU, tens of minutes on the event task).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

DEMO_TASKS = (
    "esc50",
    "esc50_scenes",
    "librispeech_sex",
    "librispeech_speakers",
    "drums",
    "guitar_chords",
    "body_percussion",
    "soundfont_instrument",
    "soundfont_pitch",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="demo-out", help="output folder (tasks, results)")
    parser.add_argument(
        "--tasks", default=",".join(DEMO_TASKS), help="comma-separated task names, or 'all'"
    )
    parser.add_argument("--protocol", choices=("hear", "linear", "knn"), default="linear")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--models",
        default=None,
        help="comma-separated models (default: echoic default + baselines)",
    )
    parser.add_argument("--data", default=None, help="data folder (default: ../shared/data)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    from echoic.cards import list_cards
    from echoic.checkpoint import DEFAULT_MODEL
    from echoic.evaluate import EvalConfig, ProbeConfig, evaluate
    from echoic.evaluate.units import auto_jobs
    from echoic.tasks.paths import resolve_data_dir
    from echoic.tasks.writer import BuildResult, build_tasks, task_names

    start = time.perf_counter()
    out = Path(args.out)
    names = task_names() if args.tasks == "all" else [t for t in args.tasks.split(",") if t]
    print(f"echoic demo: building {len(names)} tasks into {out / 'tasks'} (skipped when built)")

    def built(r: BuildResult) -> None:
        what = f"{r.rendered} clips rendered" if r.rendered else "already built"
        print(f"  {r.name:24s} {r.clips:6d} clips, {what} ({r.seconds:.1f} s)", flush=True)

    results = build_tasks(
        names, out / "tasks", resolve_data_dir(args.data), 16000, "full", not args.quiet, built
    )
    build_s = time.perf_counter() - start
    if args.models:
        models = [m for m in args.models.split(",") if m]
    else:
        # the demo's tasks are mono: multichannel baselines (the spatial tasks' ones) are left out
        baselines = [c.name for c in list_cards() if c.kind == "baseline" and c.channels == 1]
        models = [DEFAULT_MODEL, *baselines]
    print(f"echoic demo: evaluating {', '.join(models)} ({args.protocol}, {args.seeds} seeds)")
    config = EvalConfig(
        out=out / "results",
        probe=ProbeConfig(protocol=args.protocol, seeds=args.seeds),
        progress=not args.quiet,
        jobs=auto_jobs(args.protocol),  # one probe process per core (folds / grid points)
    )
    evaluate(models, [r.directory for r in results], config)
    total = time.perf_counter() - start
    print(
        f"echoic demo: done in {total / 60:.1f} min (task build {build_s:.0f} s); "
        f"report: {(out / 'results' / 'report.html').resolve()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
