"""Card of ``random_vit_tiny`` (implementation: :mod:`echoic.zoo.random_vit_tiny`)."""

from __future__ import annotations

from echoic.cards import Origin, lazy
from echoic.zoo.registry import ZooEntry, register

RANDOM_VIT_SEED = 1

register(
    ZooEntry(
        name="random_vit_tiny",
        kind="baseline",
        licence="Apache-2.0 (random weights, seed 1)",
        build=lazy("echoic.zoo.random_vit_tiny:build"),
        notes="echoic vit_tiny + Kaldi fbank at a fixed random init (seed 1; "
        "echoic-untrained-tiny is seed 0)",
        embedding_size=192,
        sample_rate=16000,
        architecture="vit_tiny on kaldi_fbank (echoic Embedder)",
        layer_sizes=(192,) * 13,  # the token embedding and 12 blocks, frequency mean
        origin=Origin(source=f"fixed random initialisation (seed {RANDOM_VIT_SEED})"),
    )
)
