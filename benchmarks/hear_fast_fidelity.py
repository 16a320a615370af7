"""Does ``--protocol hear-fast`` make the same decisions as ``--protocol hear``? Per task, the
Spearman rank correlation of the models' scores under both, and the mean / max |Δ| in points.

    python benchmarks/hear_fast_fidelity.py --fast results/hear-fast \\
        [--hear README.md | --hear results/hear/results.csv] [--protocol xares] \\
        [--reference-protocol hear] [--models a,b,c] [--tasks t1,t2]

``--protocol`` names the fast side's protocol (``hear-fast`` by default; ``xares``, or ``hear``
for a re-seeded ``hear`` run: ``--first-seed 3`` against the reference's seeds 0–2 gives the
protocol's own noise floor).

``--floor DIR`` adds, per task, how a re-seeded run of the reference protocol agrees with it.

``--fast`` is an ``echoic eval --out`` folder (or its ``results.csv``); ``--hear`` is either a
``results.csv`` / folder of ``echoic eval --protocol hear`` or the README, whose
HEAR table (3 seeds, every model) is the published reference; primary metrics only.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
from pathlib import Path

from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]


def from_results(path: Path, protocol: str) -> dict[tuple[str, str], float]:
    """Primary scores from an eval output folder's ``<model>/<task>.<protocol>.json`` files, or
    from a ``results.csv``."""
    if path.is_dir():
        scores = {}
        for result in path.glob(f"*/*.{protocol}.json"):
            data = json.loads(result.read_text())
            primary = data["scores"][data["primary_metric"]]["mean"]
            scores[(data["model"], data["task"])] = float(primary)
        return scores
    with path.open() as f:
        return {
            (r["model"], r["task"]): float(r["mean"])
            for r in csv.DictReader(f)
            if r["primary"] == "1" and r["protocol"] == protocol
        }


def from_readme(path: Path) -> dict[tuple[str, str], float]:
    """The README's HEAR table: a header row ``| task | metric | protocol | model ... |``."""
    lines = path.read_text().splitlines()
    header = next(
        i for i, line in enumerate(lines) if line.startswith("| task | metric | protocol")
    )
    models = [c.strip() for c in lines[header].strip("|").split("|")][3:]
    scores = {}
    for line in lines[header + 2 :]:
        if not line.startswith("| ") or line.startswith("| **"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        for model, cell in zip(models, cells[3:], strict=True):
            number = re.match(r"([0-9.]+)", cell)
            if number:
                scores[(model, cells[0])] = float(number.group(1))
    return scores


def agreement(a: list[float | None], b: list[float]) -> tuple[float, float] | None:
    """Spearman and mean |Δ| (points) of two score lists over the models both have (None:
    missing in ``a``); None when fewer than 3 models are left."""
    pairs = [(float(u), v) for u, v in zip(a, b, strict=True) if u is not None]
    if len(pairs) < 3:
        return None
    x, y = zip(*pairs, strict=True)
    return float(spearmanr(x, y).statistic), statistics.mean(100 * abs(u - v) for u, v in pairs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--fast", type=Path, default=ROOT / "results" / "hear-fast")
    p.add_argument("--hear", type=Path, default=ROOT / "README.md")
    p.add_argument("--protocol", default="hear-fast", help="the --fast side's protocol")
    p.add_argument("--reference-protocol", default="hear", help="the --hear side's protocol")
    p.add_argument("--models", default="", help="only these models (comma-separated)")
    p.add_argument("--tasks", default="", help="only these tasks (comma-separated)")
    p.add_argument(
        "--floor",
        type=Path,
        default=None,
        help="a re-seeded run of the reference protocol (echoic eval --first-seed): its agreement "
        "with --hear is the protocol's own noise floor, printed beside",
    )
    args = p.parse_args()
    again = from_results(args.floor, args.reference_protocol) if args.floor else {}
    fast = from_results(args.fast, args.protocol)
    hear = (
        from_readme(args.hear)
        if args.hear.suffix == ".md"
        else from_results(args.hear, args.reference_protocol)
    )
    keep_m = set(filter(None, args.models.split(",")))
    keep_t = set(filter(None, args.tasks.split(",")))
    fast = {
        (m, t): v
        for (m, t), v in fast.items()
        if (not keep_m or m in keep_m) and (not keep_t or t in keep_t)
    }
    tasks = sorted({t for _, t in fast})
    models = sorted({m for m, _ in fast})
    print(f"models: {', '.join(models)}")
    print(
        "| task | models | Spearman | mean abs diff (points) | max abs diff (points) "
        f"| {args.reference_protocol} re-seeded: Spearman (models) | re-seeded: mean abs diff |"
    )
    print("|---|---|---|---|---|---|---|")
    all_deltas, rhos, floors = [], [], []
    for task in tasks:
        both = [m for m in models if (m, task) in fast and (m, task) in hear]
        if len(both) < 3:
            print(f"| {task} | {len(both)} | — | — | — |")
            continue
        a = [fast[(m, task)] for m in both]
        b = [hear[(m, task)] for m in both]
        rho = float(spearmanr(a, b).statistic)
        deltas = [100 * abs(x - y) for x, y in zip(a, b, strict=True)]
        all_deltas += deltas
        rhos.append(rho)
        fl = agreement([again.get((m, task)) for m in both], b)
        n_fl = sum((m, task) in again for m in both)
        fl_text = "— | —" if fl is None else f"{fl[0]:.2f} ({n_fl}) | {fl[1]:.2f}"
        if fl is not None:
            floors.append(fl)
        print(
            f"| {task} | {len(both)} | {rho:.2f} | {statistics.mean(deltas):.2f} | "
            f"{max(deltas):.2f} | {fl_text} |"
        )
    if rhos:
        fl_all = (
            f"min {min(f[0] for f in floors):.2f}, mean {statistics.mean(f[0] for f in floors):.2f}"
            f" | {statistics.mean(f[1] for f in floors):.2f}"
            if floors
            else "— | —"
        )
        print(
            f"| **all** | | min {min(rhos):.2f}, mean {statistics.mean(rhos):.2f} | "
            f"{statistics.mean(all_deltas):.2f} | {max(all_deltas):.2f} | {fl_all} |"
        )
    print()
    print(f"| model | task | {args.protocol} | {args.reference_protocol} | diff (points) |")
    print("|---|---|---|---|---|")
    for model in models:
        for task in tasks:
            if (model, task) in fast and (model, task) in hear:
                f, h = fast[(model, task)], hear[(model, task)]
                print(f"| {model} | {task} | {f:.3f} | {h:.3f} | {100 * (f - h):+.1f} |")


if __name__ == "__main__":
    main()
