"""Result records: one JSON per (model, task), a CSV table, and the printed table.

Statistics: every (fold, seed) run gives one test score per metric. ``mean`` is the mean over all
runs (with one seed: hear-eval-kit's mean over folds); ``std`` is the sample standard deviation
(ddof 1) over all runs, so it mixes fold-to-fold and seed-to-seed spread; ``std_seeds`` is the
standard deviation over seeds of each seed's fold mean (seed noise alone; ``null`` with one seed).
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from echoic.evaluate.cache import slug


def summarise(runs: list[dict[str, Any]], metrics: list[str]) -> dict[str, dict[str, Any]]:
    """Per metric: mean, std over runs, std over seed means, run count (NaN runs left out)."""
    out: dict[str, dict[str, Any]] = {}
    with np.errstate(invalid="ignore"):  # d' can be ±inf (AUC 0 or 1), as in HEAR
        for m in metrics:
            out[m] = _summary([(r["seed"], r["test"].get(m, float("nan"))) for r in runs])
    return out


def _summary(values: list[tuple[int, Any]]) -> dict[str, Any]:
    """Statistics of ``(seed, value)`` pairs of one metric."""
    finite = [v for _, v in values if v is not None and not math.isnan(v)]
    per_seed = []
    for s in sorted({s for s, _ in values}):
        vs = [v for t, v in values if t == s and v is not None and not math.isnan(v)]
        if vs:
            per_seed.append(float(np.mean(vs)))
    return {
        "mean": float(np.mean(finite)) if finite else float("nan"),
        "std": float(np.std(finite, ddof=1)) if len(finite) > 1 else float("nan"),
        "std_seeds": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else None,
        "n": len(finite),
        "n_nan": len(values) - len(finite),
    }


def jsonable(value: Any) -> Any:
    """JSON-safe: NaN/inf → null, numpy → Python."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def result_path(out_dir: Path, model_label: str, task_name: str, protocol: str) -> Path:
    return Path(out_dir) / slug(model_label) / f"{task_name}.{protocol}.json"


def write_result(record: dict[str, Any], path: Path) -> Path:
    """Write one (model, task) record atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(jsonable(record), indent=1) + "\n")
    os.replace(tmp, path)
    return path


def read_results(out_dir: Path) -> list[dict[str, Any]]:
    """Every record under ``out_dir`` (sorted by model, then task)."""
    records = [json.loads(p.read_text()) for p in sorted(Path(out_dir).glob("*/*.json"))]
    return sorted(records, key=lambda r: (r["model"], r["task"], r["protocol"]))


def write_csv(records: list[dict[str, Any]], path: Path) -> Path:
    """Long table: one row per (model, task, protocol, metric)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["model", "task", "protocol", "metric", "primary", "mean", "std", "std_seeds", "n"]
        )
        for r in records:
            for m, s in r["scores"].items():
                w.writerow(
                    [
                        r["model"],
                        r["task"],
                        r["protocol"],
                        m,
                        int(m == r["primary_metric"]),
                        _fmt_num(s["mean"]),
                        _fmt_num(s["std"]),
                        _fmt_num(s.get("std_seeds")),
                        s["n"],
                    ]
                )
    return path


def _fmt_num(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6f}"


def cell(score: dict[str, Any] | None) -> str:
    """``mean ± std`` with three decimals (``—`` when missing)."""
    if not score or score.get("mean") is None or math.isnan(score["mean"]):
        return "—"
    std = score.get("std")
    if std is None or math.isnan(std):
        return f"{score['mean']:.3f}"
    return f"{score['mean']:.3f} ± {std:.3f}"


def table_rows(records: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the primary-metric table: one row per task, one column per model."""
    models = list(dict.fromkeys(r["model"] for r in records))
    tasks = sorted({(r["task"], r["primary_metric"], r["protocol"]) for r in records})
    header = ["task", "metric", "protocol", *models]
    rows = []
    for task, metric, protocol in tasks:
        row = [task, metric, protocol]
        for m in models:
            hit = [
                r
                for r in records
                if r["model"] == m and r["task"] == task and r["protocol"] == protocol
            ]
            row.append(cell(hit[0]["scores"][metric]) if hit else "—")
        rows.append(row)
    return header, rows


def format_table(records: list[dict[str, Any]]) -> str:
    """The primary-metric table as aligned text (mean ± std over folds and seeds)."""
    header, rows = table_rows(records)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def seed_average(records: list[dict[str, Any]], model: str, tasks: list[str]) -> dict[str, Any]:
    """A model's primary score averaged over ``tasks``, as ``mean ± std`` over seeds.

    For each seed: each task's primary test score averaged over its folds, then averaged over the
    tasks; the mean and (population) std of those per-seed averages. Missing task → mean None.
    """
    per_seed: dict[int, list[float]] = {}
    for task in tasks:
        hit = [r for r in records if r["model"] == model and r["task"] == task]
        if not hit:
            return {"mean": None, "std": None, "n": 0}
        rec = hit[0]
        by_seed: dict[int, list[float]] = {}
        for run in rec["runs"]:
            value = run["test"].get(rec["primary_metric"])
            if value is not None:
                by_seed.setdefault(int(run["seed"]), []).append(float(value))
        for seed, values in by_seed.items():
            per_seed.setdefault(seed, []).append(sum(values) / len(values))
    averages = [sum(v) / len(v) for v in per_seed.values() if len(v) == len(tasks)]
    if not averages:
        return {"mean": None, "std": None, "n": 0}
    arr = np.asarray(averages)
    std = float(arr.std()) if len(averages) > 1 else None  # one seed: no spread to report
    return {"mean": float(arr.mean()), "std": std, "n": len(averages)}


def markdown_table(records: list[dict[str, Any]], average: bool = True) -> str:
    """The primary-metric table in Markdown, with an average-over-tasks row (mean ± std over
    seeds, see :func:`seed_average`) when every model has every task."""
    header, rows = table_rows(records)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    if average and rows:
        tasks = [row[0] for row in rows]
        avg = [seed_average(records, m, tasks) for m in header[3:]]
        cells = [cell(a) if a["mean"] is not None else "—" for a in avg]
        lines.append("| **average** | primary | | " + " | ".join(cells) + " |")
    return "\n".join(lines)
