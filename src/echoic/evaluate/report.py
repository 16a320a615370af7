"""A self-contained HTML report with matplotlib figures (PNG, embedded as data URIs).

Figures: primary score per task with ± std error bars (one panel per task, one bar per model); a
model × task heatmap of the primary score (colour scaled per task so that tasks with different
metrics compare; the numbers are the raw means); and per multiclass task the row-normalised
confusion matrix of the model with the best primary score.
"""

from __future__ import annotations

import base64
import html
import io
import math
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from echoic.evaluate.metrics import MINIMISED
from echoic.evaluate.results import cell, table_rows


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    """PNG bytes of ``fig`` (closed afterwards)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def _tight(fig: Any, **kw: Any) -> None:
    with warnings.catch_warnings():  # very long labels: matplotlib warns and does its best
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout(**kw)


def _primary(record: dict[str, Any]) -> tuple[float, float]:
    s = record["scores"][record["primary_metric"]]
    mean = s["mean"] if s["mean"] is not None else float("nan")
    std = s["std"] if s["std"] is not None else 0.0
    return float(mean), float(std)


def _colours(models: list[str]) -> dict[str, Any]:
    """One distinct colour per model: tab10 up to 10, tab20 up to 20, then evenly spaced hues."""
    plt = _pyplot()
    n = len(models)
    if n <= 10:
        return {m: plt.get_cmap("tab10")(i) for i, m in enumerate(models)}
    if n <= 20:
        return {m: plt.get_cmap("tab20")(i) for i, m in enumerate(models)}
    cmap = plt.get_cmap("hsv")
    return {m: cmap(i / n) for i, m in enumerate(models)}


def scores_figure(records: list[dict[str, Any]]) -> bytes:
    """One panel per task: mean primary score per model with ± std error bars."""
    plt = _pyplot()
    models = list(dict.fromkeys(r["model"] for r in records))
    tasks = sorted({r["task"] for r in records})
    cols = min(4, len(tasks))
    rows = math.ceil(len(tasks) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.9 * rows), squeeze=False)
    colours = _colours(models)
    for ax, task in zip(axes.flat, tasks, strict=False):
        recs = {r["model"]: r for r in records if r["task"] == task}
        metric = next(iter(recs.values()))["primary_metric"]
        means, stds = zip(
            *(_primary(recs[m]) if m in recs else (np.nan, 0.0) for m in models), strict=True
        )
        xs = np.arange(len(models))
        ax.bar(xs, means, yerr=stds, capsize=3, color=[colours[m] for m in models])
        for x, mu, sd in zip(xs, means, stds, strict=True):
            if not math.isnan(mu):
                ax.text(x, mu + sd, f"{mu:.2f}", ha="center", va="bottom", fontsize=7)
        top = max([1.0, *[m + s for m, s in zip(means, stds, strict=True) if not math.isnan(m)]])
        ax.set_ylim(0, top * 1.12)
        ax.set_xticks([])
        arrow = "↓" if metric in MINIMISED else "↑"
        ax.set_title(f"{task}\n{metric} {arrow}", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(tasks) :]:
        ax.axis("off")
    legend_rows = math.ceil(len(models) / 5)
    bottom = min(0.3, (0.35 + 0.25 * legend_rows) / fig.get_figheight())
    fig.suptitle("Primary test score per task (mean ± std over folds and seeds)", fontsize=11)
    _tight(fig, rect=(0, bottom, 1, 1))
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[m]) for m in models]
    fig.legend(handles, models, loc="lower center", ncol=min(5, len(models)), fontsize=8)
    return _png(fig)


def heatmap_figure(records: list[dict[str, Any]]) -> bytes:
    """Models × tasks; colour = score scaled within each task (best = bright), text = raw mean."""
    plt = _pyplot()
    models = list(dict.fromkeys(r["model"] for r in records))
    tasks = sorted({r["task"] for r in records})
    raw = np.full((len(models), len(tasks)), np.nan)
    metric_of = {}
    for r in records:
        raw[models.index(r["model"]), tasks.index(r["task"])] = _primary(r)[0]
        metric_of[r["task"]] = r["primary_metric"]
    scaled = np.full_like(raw, np.nan)
    for j, t in enumerate(tasks):
        col = raw[:, j]
        if np.all(np.isnan(col)):
            continue
        lo, hi = np.nanmin(col), np.nanmax(col)
        scaled[:, j] = 0.5 if hi == lo else (col - lo) / (hi - lo)
        if metric_of[t] in MINIMISED:
            scaled[:, j] = 1 - scaled[:, j]
    fig, ax = plt.subplots(figsize=(1.0 + 0.95 * len(tasks), 0.8 + 0.5 * len(models)))
    ax.imshow(scaled, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for i in range(len(models)):
        for j in range(len(tasks)):
            if not np.isnan(raw[i, j]):
                colour = "black" if scaled[i, j] > 0.6 else "white"
                ax.text(
                    j, i, f"{raw[i, j]:.3f}", ha="center", va="center", fontsize=7, color=colour
                )
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels(
        [f"{t}\n({metric_of[t]})" for t in tasks], rotation=40, ha="right", fontsize=7
    )
    ax.set_yticks(range(len(models)))
    ax.set_yticklabels(models, fontsize=8)
    ax.set_title("Primary score: colour ranks models within each task (bright = best)", fontsize=9)
    _tight(fig)
    return _png(fig)


def confusion_figure(record: dict[str, Any]) -> bytes | None:
    """Row-normalised confusion matrix (true × predicted) summed over folds and seeds."""
    conf = record.get("confusion")
    if not conf:
        return None
    plt = _pyplot()
    labels = conf["labels"]
    m = np.asarray(conf["matrix"], dtype=float)
    norm = m / np.maximum(m.sum(1, keepdims=True), 1)
    size = min(6.5, 2.8 + 0.14 * len(labels))
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    if len(labels) <= 30:
        ax.set_xticks(range(len(labels)))
        ax.set_yticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=90, fontsize=6)
        ax.set_yticklabels(labels, fontsize=6)
    if len(labels) <= 12:
        for i in range(len(labels)):
            for j in range(len(labels)):
                if m[i, j]:
                    colour = "white" if norm[i, j] > 0.5 else "black"
                    ax.text(
                        j,
                        i,
                        f"{norm[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color=colour,
                    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    mean, _ = _primary(record)
    ax.set_title(
        f"{record['task']}: {record['model']} ({record['primary_metric']} {mean:.3f})", fontsize=9
    )
    _tight(fig)
    return _png(fig)


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


STYLE = """body{font-family:system-ui,sans-serif;margin:24px;max-width:1300px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:8px 0 18px}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f0f0f0}
img{max-width:100%;margin:8px 0 24px;border:1px solid #eee}.small{color:#666;font-size:12px}
h2{margin-top:32px}.grid{display:flex;flex-wrap:wrap;gap:8px}.grid div{flex:0 0 49%}"""


def build_report(records: list[dict[str, Any]], out_dir: Path, title: str = "echoic eval") -> Path:
    """Write ``out_dir/report.html`` (and the figures as PNG files beside it); return its path."""
    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    parts = [
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style><h1>{html.escape(title)}</h1>",
    ]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    protocols = sorted({r["protocol"] for r in records})
    seeds = sorted({r["config"].get("seeds", 1) for r in records})
    parts.append(
        f"<p class='small'>{when} · protocol {', '.join(protocols)} · seeds {seeds} · "
        "cells: mean ± std of the test score over all folds × seeds</p>"
    )
    header, rows = table_rows(records)
    parts.append("<h2>Primary metric</h2><table><tr>")
    parts += [f"<th>{html.escape(h)}</th>" for h in header]
    parts.append("</tr>")
    for row in rows:
        parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
    parts.append(
        "</table><h2>Models</h2><table><tr><th>name</th><th>label</th><th>identity</th></tr>"
    )
    seen: dict[str, dict[str, Any]] = {}
    for r in records:
        seen.setdefault(r["model"], r)
    for name, r in seen.items():
        parts.append(
            f"<tr><td>{html.escape(name)}</td><td>{html.escape(r['model_label'])}</td>"
            f"<td class='small'>{html.escape(r['identity'])}</td></tr>"
        )
    parts.append("</table>")
    figures = [
        ("scores.png", scores_figure(records), "Scores per task"),
        ("heatmap.png", heatmap_figure(records), "Model × task"),
    ]
    for name, image, heading in figures:
        (fig_dir / name).write_bytes(image)
        parts.append(f"<h2>{heading}</h2>{_img(image, heading)}")
    parts.append("<h2>Confusion matrices (best model per task)</h2><div class='grid'>")
    for task in sorted({r["task"] for r in records}):
        candidates = [r for r in records if r["task"] == task and r.get("confusion")]
        if not candidates:
            continue
        sign = -1 if candidates[0]["primary_metric"] in MINIMISED else 1
        best = max(candidates, key=lambda r: sign * np.nan_to_num(_primary(r)[0], nan=-np.inf))
        png = confusion_figure(best)
        if png is not None:
            (fig_dir / f"confusion_{task}.png").write_bytes(png)
            parts.append(f"<div>{_img(png, task)}</div>")
    parts.append("</div>")
    parts.append(
        "<h2>All metrics</h2><table><tr><th>model</th><th>task</th><th>metric</th>"
        "<th>mean ± std</th><th>runs</th><th>hyper-parameters</th></tr>"
    )
    for r in records:
        hp = ", ".join(f"{k}={v}" for k, v in r.get("hparams", {}).items())
        for m, s in r["scores"].items():
            parts.append(
                f"<tr><td>{html.escape(r['model'])}</td><td>{html.escape(r['task'])}</td>"
                f"<td>{html.escape(m)}</td><td>{cell(s)}</td><td>{s['n']}</td>"
                f"<td class='small'>{html.escape(hp) if m == r['primary_metric'] else ''}</td></tr>"
            )
    parts.append("</table>")
    path = out_dir / "report.html"
    path.write_text("\n".join(parts) + "\n")
    return path
