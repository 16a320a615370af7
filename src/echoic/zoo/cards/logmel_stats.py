"""Cards of ``logmel_stats`` and its per-channel forms for multichannel tasks (``logmel_stats_2ch``:
binaural, ``logmel_stats_4ch``: first-order ambisonics); implementation:
:mod:`echoic.zoo.logmel_stats`."""

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

for _channels, _layout in ((2, "binaural"), (4, "first-order ambisonics")):
    register(
        ZooEntry(
            name=f"logmel_stats_{_channels}ch",
            kind="baseline",
            licence="Apache-2.0 (echoic code; no weights)",
            build=lazy("echoic.zoo.logmel_stats:LogMelStats", channels=_channels),
            notes=(
                f"logmel_stats of each of {_channels} channels ({_layout}; the spatial tasks): "
                f"mean and std of 64 log-mel bands per channel, no inter-channel cue"
            ),
            embedding_size=128 * _channels,
            sample_rate=16000,
            origin=Origin(source="no weights: statistics of the input"),
            channels=_channels,
        )
    )
