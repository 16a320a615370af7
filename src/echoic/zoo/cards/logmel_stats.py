"""Card of ``logmel_stats`` (implementation: :mod:`echoic.zoo.logmel_stats`)."""

from __future__ import annotations

from echoic.cards import Origin, lazy
from echoic.zoo.registry import ZooEntry, register

register(
    ZooEntry(
        name="logmel_stats",
        kind="baseline",
        licence="Apache-2.0 (echoic code; no weights)",
        build=lazy("echoic.zoo.logmel_stats:LogMelStats"),
        notes="mean and std of 64 log-mel bands; frames: 250 ms context every 40 ms",
        embedding_size=128,
        sample_rate=16000,
        origin=Origin(source="no weights: statistics of the input"),
    )
)
