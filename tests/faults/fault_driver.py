"""``echoic`` slowed down, to be killed mid-run: ``python fault_driver.py DELAY_S VERB ARGS...``.

Runs ``echoic.cli.main.main([VERB, *ARGS])`` in this process, exactly as ``python -m
echoic.cli.main`` would (its signal handling included), except that each embedding call
(``embed``: and a part file every 2 files) or each training step (``pretrain``) first sleeps
DELAY_S seconds, so that a test can send a signal while work is in flight.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from functools import partial
from typing import Any


class Slow:
    """An embedding model whose ``embed`` sleeps ``delay`` seconds first."""

    def __init__(self, inner: Any, delay: float) -> None:
        self.inner = inner
        self.delay = delay

    def __getattr__(self, name: str) -> Any:  # label, identity, sample_rate, channels ...
        return getattr(self.inner, name)

    def embed(self, waveforms: Sequence[Any], sample_rate: int | None = None) -> Any:
        time.sleep(self.delay)
        return self.inner.embed(waveforms, sample_rate)


def slow_embed(delay: float) -> None:
    import echoic.embed.extract as extract_mod
    import echoic.zoo.registry as registry

    resolve = registry.resolve_model
    registry.resolve_model = lambda *a, **k: Slow(resolve(*a, **k), delay)  # type: ignore[assignment]
    extract_mod.extract = partial(extract_mod.extract, files_per_batch=2, flush_every=2)  # type: ignore[assignment]


def slow_pretrain(delay: float) -> None:
    from echoic.train.module import PretrainModule

    step = PretrainModule.training_step

    def slowed(self: PretrainModule, batch: Any, batch_idx: int) -> Any:
        time.sleep(delay)
        return step(self, batch, batch_idx)

    PretrainModule.training_step = slowed  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    delay, verb, rest = float(argv[0]), argv[1], argv[2:]
    if delay > 0:
        (slow_embed if verb == "embed" else slow_pretrain)(delay)
    from echoic.cli.main import main as cli

    return cli([verb, *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
