"""Embed the same clips on the CPU and on a GPU with any models; print the largest differences.

Every embedding path takes a device (the echoic Embedder, the zoo's peers: ``device=``, ``echoic
embed --device``, ``echoic eval --embed-device``), so this replaces the old CREPE-only wrapper
(``crepe_cuda.py``, which patched the adapter's ``__init__``): the identities must be equal (the
device never enters a cache key) and the outputs equal up to float rounding (TF32 stays off).

    python scripts/gpu_probes/device_check.py echoic-tiny torchcrepe_tiny resemblyzer aisfx
    python scripts/gpu_probes/device_check.py echoic-tiny --precision bf16   # bf16 on the GPU
"""

from __future__ import annotations

import argparse
import sys
import time

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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model names or directories")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", default="fp32", help="echoic models: fp32 or bf16")
    args = parser.parse_args(argv)
    for name in args.models:
        print(check(name, args.device, args.precision), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
