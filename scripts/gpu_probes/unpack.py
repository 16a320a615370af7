"""Unpack a pack.py folder into WORK/cache and WORK/tasks (float32 .npz; empty 16000/ folders).

python unpack.py PACK WORK
"""

from __future__ import annotations

import io
import lzma
import shutil
import sys
from pathlib import Path

import numpy as np


def main() -> None:
    src, work = Path(sys.argv[1]), Path(sys.argv[2])
    for task in sorted((src / "tasks").glob("*")):
        dst = work / "tasks" / task.name
        if not dst.exists():
            shutil.copytree(task, dst)
        (dst / "16000").mkdir(exist_ok=True)  # echoic eval looks for an audio-rate folder
    n = 0
    for f in sorted((src / "cache").glob("*/*/*/*.npz.xz")):
        dst = work / "cache" / f.relative_to(src / "cache").parent / f.name[:-3]
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f.parent / "cache_info.json", dst.parent / "cache_info.json")
        with np.load(io.BytesIO(lzma.decompress(f.read_bytes())), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        shape = tuple(int(d) for d in arrays.pop("x_shape"))
        raw = arrays.pop("x_f16_shuffled").T.copy().tobytes()
        arrays["x"] = np.frombuffer(raw, np.float16).reshape(shape).astype(np.float32)
        np.savez(dst, **arrays)
        n += 1
    print(f"unpacked {n} splits into {work}")


if __name__ == "__main__":
    main()
