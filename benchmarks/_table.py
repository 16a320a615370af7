"""What the benchmark scripts share for their markdown tables (imported as ``_table``: a script's
own folder is first on ``sys.path`` when it runs as ``python benchmarks/<script>.py``)."""

from __future__ import annotations

import statistics


def cell(values: list[float]) -> str:
    """``"0.123"`` for one value, ``"mean ± sample std"`` over several (3 decimals)."""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"
