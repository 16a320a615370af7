"""Reduced-precision inference for the Embedder: ``fp32`` (default), ``bf16``, ``int8``, ``auto``.

* ``bf16``: the encoder's weights and activations in bfloat16 (LayerNorm and softmax accumulate in
  float32 inside PyTorch's kernels); the frontend stays float32 and the pooled frames come back as
  float32. Fast only on CPUs with native bf16 dot products (AVX-512 BF16, AMX) and on GPUs; on an
  AVX2-only CPU bf16 matmuls are emulated and ~100× slower.
* ``int8``: every ``nn.Linear`` of the encoder dynamically quantised (int8 weights per tensor,
  activations quantised per batch; PyTorch's ``quantize_dynamic``, fbgemm / oneDNN with VNNI).
  Larger error than bf16 (measured in docs/evaluation.md): never chosen by ``auto``.
* ``auto``: measured, never guessed. On a CPU whose flags say it has native bf16, the model's own
  encoder runs one 2.56-s batch at fp32 and at bf16 (best of three each, on the current thread
  count); bf16 is chosen only when it is at least ``AUTO_MIN_SPEEDUP`` times faster. The decision is
  cached per (CPU model, flags, torch version, thread count, model config) in
  ``$ECHOIC_CACHE/precision.json`` (default ``~/.cache/echoic``). Without native bf16, ``auto`` is
  fp32 without measuring. On a CUDA device (the Embedder's ``device``) ``auto`` is bf16 when the
  GPU has native bf16 (compute capability ≥ 8.0), else fp32; ``int8`` is CPU-only there.

The precision enters the embedding identity (caches never mix precisions); fp32 leaves identities
as they were.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import time
import warnings
from pathlib import Path

import torch

from echoic.checkpoint import EchoicModel
from echoic.config import to_dict
from echoic.errors import ConfigError
from echoic.types import AudioBatch

__all__ = [
    "AUTO_MIN_SPEEDUP",
    "PRECISIONS",
    "cast_model",
    "choose_precision",
    "cpu_flags",
    "has_native_bf16",
    "input_dtype",
]

PRECISIONS = ("fp32", "bf16", "int8", "auto")
AUTO_MIN_SPEEDUP = 1.15
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ConfigError(
            f"precision must be one of {', '.join(PRECISIONS)}; found {precision!r}. fp32 is exact; "
            "bf16 and int8 trade accuracy for speed where the CPU supports them; auto measures."
        )
    return precision


def cpu_flags() -> set[str]:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where it cannot be read)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def has_native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether bf16 matmuls run natively: a CUDA device, or a CPU with AVX-512 BF16 / AMX."""
    if torch.device(device).type == "cuda":
        return True
    return bool(cpu_flags() & set(_BF16_FLAGS))


def input_dtype(precision: str) -> torch.dtype | None:
    """The dtype the encoder's input features are cast to (None: leave them float32)."""
    return torch.bfloat16 if precision == "bf16" else None


def cast_model(
    model: EchoicModel, precision: str, device: torch.device | str = "cpu"
) -> EchoicModel:
    """``model`` itself for fp32 on the CPU, else a copy on ``device`` whose encoder runs at
    ``precision`` (the caller's model is never moved or converted)."""
    check_precision(precision)
    device = torch.device(device)
    if precision == "auto":
        raise ConfigError("resolve precision='auto' with choose_precision() before cast_model().")
    if precision == "int8" and device.type != "cpu":
        raise ConfigError(
            f"precision 'int8' runs on the CPU only (PyTorch's dynamic quantisation); found "
            f"device {str(device)!r}. On a GPU use precision 'bf16' (or 'fp32')."
        )
    if precision == "fp32":
        return model if device.type == "cpu" else copy.deepcopy(model).eval().to(device)
    out = copy.deepcopy(model).eval()
    if precision == "bf16":
        out.encoder.to(torch.bfloat16)
        out.to(device)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated (still works)
            from torch.ao.quantization import quantize_dynamic

            out.encoder = quantize_dynamic(out.encoder, {torch.nn.Linear}, dtype=torch.qint8)
    return out


def _cache_file() -> Path:
    root = Path(os.environ.get("ECHOIC_CACHE", Path.home() / ".cache" / "echoic"))
    return root / "precision.json"


def _decision_key(model: EchoicModel) -> str:
    config = {
        "cpu": cpu_model(),
        "flags": sorted(cpu_flags() & {"avx2", "avx512f", "avx512_vnni", *_BF16_FLAGS}),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "encoder": model.config.encoder,
        "encoder_config": to_dict(model.config).get("encoder_config"),
    }
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


@torch.inference_mode()
def _seconds(model: EchoicModel, batch: AudioBatch, dtype: torch.dtype | None) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        features = model.frontend(batch)
        if dtype is not None:
            features.values = features.values.to(dtype)
        model.encoder(features)
        best = min(best, time.perf_counter() - start)
    return best


def measure_bf16_speedup(model: EchoicModel, seconds: float = 2.56, batch: int = 4) -> float:
    """fp32 time / bf16 time of the model on ``batch`` random clips of ``seconds`` (best of 3)."""
    n = round(seconds * model.sample_rate)
    g = torch.Generator().manual_seed(0)
    audio = AudioBatch(
        torch.randn(batch, n, generator=g) * 0.1, torch.full((batch,), n), model.sample_rate
    )
    fp32 = _seconds(model, audio, None)
    bf16 = _seconds(cast_model(model, "bf16"), audio, torch.bfloat16)
    return fp32 / bf16


def choose_precision(model: EchoicModel, precision: str, device: torch.device | str = "cpu") -> str:
    """Resolve ``auto`` (see the module docstring); other precisions are returned checked.

    On a CUDA device ``auto`` is bf16 where the GPU supports it (``torch.cuda.is_bf16_supported``:
    compute capability ≥ 8.0), else fp32; the CPU rule is measured."""
    if check_precision(precision) != "auto":
        return precision
    if torch.device(device).type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if not has_native_bf16():
        return "fp32"
    path, key = _cache_file(), _decision_key(model)
    try:
        decisions = json.loads(path.read_text())
    except (OSError, ValueError):
        decisions = {}
    if key not in decisions:
        speedup = measure_bf16_speedup(model)
        decisions[key] = {
            "precision": "bf16" if speedup >= AUTO_MIN_SPEEDUP else "fp32",
            "bf16_speedup": round(speedup, 3),
            "cpu": cpu_model(),
            "threads": torch.get_num_threads(),
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(decisions, indent=1, sort_keys=True))
        except OSError:
            pass  # an unwritable cache only means measuring again next time
    return str(decisions[key]["precision"])
