"""What the benchmark scripts share for their headers and markdown tables (imported as ``_table``:
a script's own folder is first on ``sys.path`` when it runs as ``python benchmarks/<script>.py``)."""

from __future__ import annotations

import os
import statistics

from echoic.embed.precision import cpu_flags, cpu_model

# the flags that decide CPU precision (bf16 is ~100x slower than fp32 without avx512_bf16)
PRECISION_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16")


def machine() -> str:
    """One header line: the CPU model, its precision-relevant flags and the core count."""
    flags = cpu_flags()
    shown = [f for f in PRECISION_FLAGS if f in flags]
    return f"cpu: {cpu_model()}; flags: {' '.join(shown) or 'none of avx2/avx512'}; cores: {os.cpu_count()}"


def cell(values: list[float]) -> str:
    """``"0.123"`` for one value, ``"mean ± sample std"`` over several (3 decimals)."""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"
