"""Pack task audio (lossless FLAC) and echoic model folders, for a GPU host that embeds itself.

    python scripts/gpu_probes/pack_audio.py --tasks-dir TASKS --out PACK --task esc50_scenes \
        --model v2c=/path/to/model_dir --variant v2c-s4=v2c:'{"shifts": 4}'

For tasks whose cached embeddings are too large to carry (timestamp embeddings of a wide model),
carry the audio instead: 16-bit wav → FLAC (checked sample-exact before it is kept) plus the task's
metadata; the host's CPU cores embed, its GPU trains the probes (``run_audio.sh``). ``--model``
copies a model folder once; ``--variant NAME=MODEL:JSON`` is that model with its recommended
embedding settings updated by JSON (made on the host, so the weights travel once). Every model and
variant becomes one job per ``--task`` in ``PACK/audio_jobs.txt`` (``NAME TASK_FOLDER``).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf
from pack import copy_metadata, task_folder  # beside this script


def flac_copy(task: Path, dst: Path) -> int:
    """FLAC copies of ``task/16000/**.wav`` under ``dst/16000`` + the metadata; bytes written."""
    copy_metadata(task, dst)
    total = 0
    for wav in sorted((task / "16000").rglob("*.wav")):
        out = dst / "16000" / wav.relative_to(task / "16000").with_suffix(".flac")
        out.parent.mkdir(parents=True, exist_ok=True)
        x, sr = sf.read(wav, dtype="int16")
        sf.write(out, x, sr, subtype="PCM_16", format="FLAC")
        back, sr2 = sf.read(out, dtype="int16")
        if sr2 != sr or not np.array_equal(back, x):
            raise SystemExit(f"FLAC copy of {wav} is not sample-exact")
        total += out.stat().st_size
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks-dir", type=Path, required=True, help="folder of HEAR task folders")
    ap.add_argument("--out", type=Path, required=True, help="pack folder")
    ap.add_argument("--task", action="append", required=True, help="task name (repeatable)")
    ap.add_argument("--model", action="append", default=[], help="NAME=MODEL_DIR (repeatable)")
    ap.add_argument("--variant", action="append", default=[], help="NAME=MODEL:EMBED_JSON")
    args = ap.parse_args()
    names = []
    for spec in args.model:
        name, folder = spec.split("=", 1)
        dst = args.out / "models" / name
        dst.mkdir(parents=True, exist_ok=True)
        for f in ("model.safetensors", "config.json"):
            shutil.copy2(Path(folder) / f, dst / f)
        names.append(name)
    variants = {}
    for spec in args.variant:
        name, rest = spec.split("=", 1)
        base, embed = rest.split(":", 1)
        if base not in names:
            raise SystemExit(f"variant {name}: no --model {base}")
        variants[name] = {"model": base, "embed": json.loads(embed)}
        names.append(name)
    (args.out / "variants.json").write_text(json.dumps(variants, indent=1) + "\n")
    jobs, total = [], 0
    for task in args.task:
        tdir = task_folder(args.tasks_dir, task)
        total += flac_copy(tdir, args.out / "audio" / tdir.name)
        jobs += [f"{name} {tdir.name}" for name in names]
    (args.out / "audio_jobs.txt").write_text("\n".join(jobs) + "\n")
    print(f"{args.out}: {len(jobs)} jobs, {total / 1e6:.1f} MB of FLAC audio")


if __name__ == "__main__":
    main()
