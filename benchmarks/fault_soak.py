"""Random kills of ``echoic embed`` and ``echoic pretrain``, N rounds each, invariants every round.

The long form of ``tests/faults/``: each round starts a slowed job in a child process
(``tests/faults/fault_driver.py``), sends SIGTERM or SIGKILL at a random moment of its run, checks
what the killed job left (every part file reads; the checkpoint loads; no temporary file), runs
the same command again to the end (``--resume auto`` for pretraining) and checks the result
against an undisturbed run: rows / steps lost must be 0, none twice, every value equal (1e-6).
Prints one row per fault: rounds, how many kills landed mid-run, rows / steps lost, work redone
(steps the killed pretraining had finished after its last checkpoint; an embedding run
redoes at most the batch in flight, not counted) and the time to recover (the re-run's
wall time, start-up included).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fault_soak.py --rounds 3
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "faults"))

from fault_helpers import (  # noqa: E402
    checkpoint_leftovers,
    checkpoint_step,
    embed_args,
    leftovers,
    logged_steps,
    output,
    parts,
    rows,
    rows_lost,
    run,
    start,
    steps_lost,
    tiny_recipe,
    wait_for,
)


@dataclass
class Tally:
    fault: str
    mid_run: int = 0
    lost: list[int] = field(default_factory=list)
    redone: list[int] = field(default_factory=list)
    recover_s: list[float] = field(default_factory=list)


def kill_at_random(child, progress, total: int, sig: int, rng: random.Random, delay: float) -> bool:
    """Wait until ``progress()`` reaches a random point of ``total``, a random fraction of a
    batch more, then send ``sig``; False if the job ended first."""
    target = rng.randint(1, max(1, total - 2))
    if not wait_for(lambda: progress() >= target, child, timeout=300):
        return False
    time.sleep(rng.uniform(0, delay))
    if child.poll() is not None:
        return False
    os.kill(child.pid, sig)
    output(child)
    return True


def embed_round(root: Path, setup: dict, sig: int, rng: random.Random, tally: Tally) -> None:
    out = root / f"emb-{rng.getrandbits(32):08x}.parquet"
    args = embed_args(setup["model"], setup["audio"], out)
    child = start("embed", args, delay=setup["delay"])
    total = setup["files"] // 2  # parts of 2 files
    if kill_at_random(child, lambda: len(parts(out)), total, sig, rng, setup["delay"]):
        tally.mid_run += 1
    done_before = sum(len(rows(p)) for p in parts(out))  # every part reads, none twice
    # a kill -9 mid-write may leave a temporary file (never a part): the re-run removes it
    assert all(p in parts(out) or p.name.endswith(".tmp") for p in leftovers(out))
    began = time.perf_counter()
    again = run("embed", args)
    tally.recover_s.append(time.perf_counter() - began)
    assert again.returncode == 0, again.stdout[-2000:]
    tally.lost.append(rows_lost(out, setup["reference"]))
    assert leftovers(out) == []
    assert f"({done_before} already there)" in again.stdout  # the killed run's parts are kept


def pretrain_round(root: Path, setup: dict, sig: int, rng: random.Random, tally: Tally) -> None:
    name = f"run-{rng.getrandbits(32):08x}"
    out = root / name
    recipe = tiny_recipe(
        root / f"{name}.yaml", setup["train_audio"], out, setup["steps"], setup["every"]
    )
    child = start("pretrain", ["--config", str(recipe)], delay=setup["delay"])
    if kill_at_random(child, lambda: logged_steps(out), setup["steps"], sig, rng, setup["delay"]):
        tally.mid_run += 1
    last = out / "checkpoints" / "last.ckpt"
    saved = checkpoint_step(last) if last.is_file() else 0  # it loads
    tally.redone.append(logged_steps(out) - saved)
    assert all(p.name.endswith(".tmp") for p in checkpoint_leftovers(out))  # removed by the re-run
    began = time.perf_counter()
    again = run("pretrain", ["--config", str(recipe), "--resume", "auto"])
    tally.recover_s.append(time.perf_counter() - began)
    assert again.returncode == 0, again.stdout[-2000:]
    assert checkpoint_step(last) == setup["steps"] and checkpoint_leftovers(out) == []
    tally.lost.append(steps_lost(out, setup["reference_run"]))


def prepare(root: Path, files: int, steps: int, every: int, delay: float) -> dict:
    import numpy as np
    import soundfile as sf

    from echoic.checkpoint import EchoicModel, ModelConfig, save
    from echoic.data.testing import make_good_files
    from echoic.embed.extract import extract
    from echoic.train.config import load_config
    from echoic.train.run import pretrain
    from echoic.zoo.registry import resolve_model

    model = root / "model"
    config = ModelConfig(encoder="vit_test", frontend="kaldi_fbank", name="tiny-soak",
                         frontend_config={"n_mels": 128}, untrained=True)  # fmt: skip
    save(EchoicModel(config).eval(), model)
    audio = root / "audio"
    make_good_files(audio, files, seconds=0.5)
    reference = root / "reference.parquet"
    extract([audio], reference, resolve_model(str(model)), progress=False)
    train_audio = root / "train_audio"
    train_audio.mkdir()
    noise = np.random.default_rng(0)
    for i in range(6):
        clip = (0.1 * noise.standard_normal(9000 + 1500 * i)).astype(np.float32)
        sf.write(train_audio / f"c{i}.wav", clip, 16000)
    reference_run = root / "reference_run"
    recipe = tiny_recipe(root / "reference.yaml", train_audio, reference_run, steps, every)
    pretrain(load_config(recipe), export=False)
    return {"model": model, "audio": audio, "reference": reference, "files": files,
            "train_audio": train_audio, "reference_run": reference_run, "steps": steps,
            "every": every, "delay": delay}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per fault")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--files", type=int, default=24, help="clips per embedding job")
    parser.add_argument("--steps", type=int, default=12, help="steps per pretraining job")
    parser.add_argument("--every", type=int, default=3, help="checkpoint every N steps")
    parser.add_argument("--delay", type=float, default=0.3, help="seconds per batch / step")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    faults = [("embed", signal.SIGTERM), ("embed", signal.SIGKILL),
              ("pretrain", signal.SIGTERM), ("pretrain", signal.SIGKILL)]  # fmt: skip
    tallies = {(job, sig): Tally(f"{job} {'SIGTERM' if sig == signal.SIGTERM else 'kill -9'}")
               for job, sig in faults}  # fmt: skip
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fault_soak-") as tmp:
        setup = prepare(Path(tmp), args.files, args.steps, args.every, args.delay)
        schedule = [f for f in faults for _ in range(args.rounds)]
        rng.shuffle(schedule)
        for job, sig in schedule:
            step = embed_round if job == "embed" else pretrain_round
            step(Path(tmp), setup, sig, rng, tallies[(job, sig)])
            print(".", end="", flush=True)
    print(f"\n{len(schedule)} rounds in {time.perf_counter() - began:.0f} s "
          f"(embed: {args.files} clips, parts of 2; pretrain: {args.steps} steps, checkpoint "
          f"every {args.every}; {args.delay} s per batch / step; OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')})")  # fmt: skip
    unit = {"embed": "rows", "pretrain": "steps"}
    print(f"{'fault':<18} {'rounds':>6} {'mid-run':>7} {'lost':>10} {'redone med/max':>15} "
          f"{'recover med s':>13} {'max s':>6}")  # fmt: skip
    for (job, _), t in tallies.items():
        lost = f"{sum(t.lost)} {unit[job]}"
        redone = f"{statistics.median(t.redone):g}/{max(t.redone)}" if t.redone else "-"
        print(f"{t.fault:<18} {len(t.lost):>6} {t.mid_run:>7} {lost:>10} {redone:>15} "
              f"{statistics.median(t.recover_s):>13.1f} {max(t.recover_s):>6.1f}")  # fmt: skip
        assert sum(t.lost) == 0, f"{t.fault}: {sum(t.lost)} {unit[job]} lost"


if __name__ == "__main__":
    main()
