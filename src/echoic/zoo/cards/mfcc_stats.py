"""Card of ``mfcc_stats`` (implementation: :mod:`echoic.zoo.mfcc_stats`)."""

from __future__ import annotations

from echoic.cards import Origin, lazy
from echoic.zoo.registry import ZooEntry, register

register(
    ZooEntry(
        name="mfcc_stats",
        kind="baseline",
        licence="Apache-2.0 (echoic code; no weights)",
        build=lazy("echoic.zoo.mfcc_stats:MfccStats"),
        notes="20 MFCC + delta + delta-delta (40 mel bands), mean and std",
        embedding_size=120,
        sample_rate=16000,
        origin=Origin(source="no weights: statistics of the input"),
    )
)
