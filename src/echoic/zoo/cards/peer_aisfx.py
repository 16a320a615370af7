"""Card of the ``aisfx`` peer (implementation: :mod:`echoic.zoo.peer_aisfx`)."""

from __future__ import annotations

from echoic.cards import Origin, lazy
from echoic.zoo.registry import ZooEntry, register

INSTALL = "pip install librosa scipy && pip install --no-deps aisfx==0.1.2"
SAMPLE_RATE = 44100

register(
    ZooEntry(
        name="aisfx",
        kind="peer",
        licence="code MIT (PyPI classifier); weights CC BY 4.0 (attribution: Ma & Lerch 2022)",
        build=lazy("echoic.zoo.peer_aisfx:AisfxModel"),
        requires=("aisfx", "librosa", "scipy"),
        install=INSTALL,
        notes="sound-effects CNN (X-Sequential-CE), 512-d per 2.3 s block every 1.16 s, 44.1 kHz",
        embedding_size=512,
        sample_rate=SAMPLE_RATE,
        origin=Origin(
            source="PyPI aisfx 0.1.2 (weights inside the package)",
            package_file="aisfx:models/checkpoint.pth",
        ),
    )
)
