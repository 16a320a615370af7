"""Plot the collapse check of an audio–text run (``slap``/``clap`` log ``*_std`` and ``*_rank`` every
N steps into ``train_log.jsonl``): embedding std and effective rank per modality over training.

    .venv/bin/python benchmarks/plot_collapse.py runs/at/slap --out docs/img/slap_collapse.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a pretraining output folder (train_log.jsonl)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    rows = [json.loads(line) for line in (args.run / "train_log.jsonl").open()]
    rows = [r for r in rows if any(k.endswith("_rank") for k in r)]
    if not rows:
        raise SystemExit(f"{args.run}/train_log.jsonl has no *_std / *_rank entries")
    names = sorted({k[: -len("_rank")] for r in rows for k in r if k.endswith("_rank")})
    fig, (ax_std, ax_rank) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name in names:
        steps = [r["step"] for r in rows if f"{name}_rank" in r]
        ax_std.plot(steps, [r[f"{name}_std"] for r in rows if f"{name}_rank" in r], label=name)
        ax_rank.plot(steps, [r[f"{name}_rank"] for r in rows if f"{name}_rank" in r], label=name)
    ax_std.set(xlabel="step", ylabel="std per dimension", title="embedding std")
    ax_rank.set(xlabel="step", ylabel="exp(entropy of singular values)", title="effective rank")
    ax_rank.legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out} ({len(rows)} points, {', '.join(names)})")


if __name__ == "__main__":
    main()
