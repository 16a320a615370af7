"""A Ray extraction driver to kill: ``python ray_driver.py MODEL_DIR AUDIO OUT PID_DIR DELAY``
starts its own local Ray (2 CPUs, 127.0.0.1), embeds AUDIO into OUT with a model slowed by DELAY
seconds per batch, and prints the report's summary."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ray_helpers import slow_factory, start_local_ray

from echoic.embed.ray_extract import RayConfig, extract_ray


def main() -> None:
    model, audio, out, pid_dir, delay = sys.argv[1:6]
    ray = start_local_ray()
    factory = slow_factory(model, float(delay), Path(pid_dir))
    config = RayConfig(num_workers=2, files_per_batch=2)
    report = extract_ray([audio], out, factory, config=config, progress=False)
    print(report.summary(), flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main()
