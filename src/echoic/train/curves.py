"""Training curves from TensorBoard scalars: read a run's ``tb/`` events, plot them to a PNG.

``plot_runs([run_a, run_b], "curves.png")`` draws one panel per run with its loss (raw and a centred
moving average) against the optimiser step, and the learning rate on a second axis.
The scalars are read with TensorBoard's own event reader, so the PNG shows exactly what
``tensorboard --logdir`` shows.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from echoic.errors import EchoicError

__all__ = ["plot_runs", "read_scalars"]


def read_scalars(run_dir: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``tag → (steps, values)`` of every scalar logged under ``run_dir/tb`` (or ``run_dir``)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = Path(run_dir)
    logdir = run / "tb" if (run / "tb").is_dir() else run
    if not any(logdir.rglob("events.out.tfevents.*")):
        raise EchoicError(
            f"no TensorBoard event files under {logdir}; expected a pretraining run folder "
            f"(echoic pretrain writes OUTPUT_DIR/tb/) with trainer.tensorboard true"
        )
    scalars: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for events in sorted({p.parent for p in logdir.rglob("events.out.tfevents.*")}):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            points = acc.Scalars(tag)
            steps = np.array([p.step for p in points], dtype=np.int64)
            values = np.array([p.value for p in points], dtype=np.float64)
            if tag in scalars:  # resumed runs write a second event file
                steps = np.concatenate([scalars[tag][0], steps])
                values = np.concatenate([scalars[tag][1], values])
            order = np.argsort(steps, kind="stable")
            scalars[tag] = (steps[order], values[order])
    return scalars


def _smooth(values: np.ndarray) -> np.ndarray:
    """Centred moving average over ~5 % of the points (edges use the points they have)."""
    half = max(1, len(values) // 40)
    kernel = np.ones(2 * half + 1)
    total = np.convolve(values, kernel, mode="same")
    count = np.convolve(np.ones_like(values), kernel, mode="same")
    return total / count


def _find(scalars: dict[str, tuple[np.ndarray, np.ndarray]], *names: str) -> str | None:
    for name in names:
        for tag in scalars:
            if tag == name or tag.endswith("/" + name):
                return tag
    return None


def plot_runs(
    runs: Sequence[str | Path],
    out: str | Path | None = None,
    labels: Sequence[str] | None = None,
    loss_tag: str = "loss",
) -> bytes:
    """PNG bytes (also written to ``out`` if given): loss and lr against step, a panel per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(labels) if labels else [Path(r).name for r in runs]
    cols = min(3, len(runs))
    rows = math.ceil(len(runs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, run, label in zip(axes.flat, runs, labels, strict=False):
        scalars = read_scalars(run)
        tag = _find(scalars, loss_tag, "train/loss", "loss_step")
        if tag is None:
            raise EchoicError(f"{run}: no {loss_tag!r} scalar; found {sorted(scalars)}")
        steps, values = scalars[tag]
        ax.plot(steps, values, color="tab:blue", alpha=0.3, lw=0.8)
        ax.plot(steps, _smooth(values), color="tab:blue", lw=1.5, label="loss (moving average)")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("optimiser step", fontsize=8)
        ax.set_ylabel(tag, fontsize=8)
        ax.tick_params(labelsize=7)
        lr = _find(scalars, "lr", "lr-AdamW")
        if lr is not None:
            twin = ax.twinx()
            twin.plot(*scalars[lr], color="tab:orange", lw=1.0)
            twin.set_ylabel("learning rate", fontsize=8, color="tab:orange")
            twin.tick_params(labelsize=7, colors="tab:orange")
    for ax in list(axes.flat)[len(runs) :]:
        ax.axis("off")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    data = buf.getvalue()
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_bytes(data)
    return data
