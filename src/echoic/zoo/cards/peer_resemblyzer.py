"""Card of the ``resemblyzer`` peer (implementation: :mod:`echoic.zoo.peer_resemblyzer`)."""

from __future__ import annotations

from echoic.cards import Origin, lazy
from echoic.zoo.registry import ZooEntry, register

INSTALL = "pip install librosa scipy webrtcvad-wheels && pip install --no-deps resemblyzer==0.1.4"

register(
    ZooEntry(
        name="resemblyzer",
        kind="peer",
        licence="Apache-2.0 (code and bundled weights)",
        build=lazy("echoic.zoo.peer_resemblyzer:ResemblyzerModel"),
        requires=("resemblyzer", "librosa", "webrtcvad", "scipy"),
        install=INSTALL,
        notes="GE2E speaker encoder (LSTM on 40-band mel), 256-d per 1.6 s partial every 0.77 s",
        embedding_size=256,
        sample_rate=16000,
        origin=Origin(
            source="PyPI resemblyzer 0.1.4 (weights inside the package)",
            package_file="resemblyzer:pretrained.pt",
        ),
    )
)
