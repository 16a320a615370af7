"""Card of ``bag_of_tokens`` (implementation: :mod:`echoic.zoo.bag_of_tokens`)."""

from __future__ import annotations

from echoic.cards import Origin, lazy
from echoic.zoo.registry import ZooEntry, register

ENCODER = "bag_of_tokens"  # the encoder name its model directories' config.json records

register(
    ZooEntry(
        name="bag_of_tokens",
        kind="baseline",
        licence="Apache-2.0 (code); a fitted tokenizer follows its fit audio and model",
        build=lazy("echoic.zoo.bag_of_tokens:build"),
        notes="histograms of a fitted tokenizer's ids (echoic tokenizer fit)",
        embedding_size=100,
        sample_rate=16000,
        checkpoint_encoder=ENCODER,
        architecture="echoic.zoo.bag_of_tokens.TokenHistogramModel (tokenizer ids → histograms)",
        origin=Origin(source="fit with echoic tokenizer fit"),
        adapt_to_directory=lazy("echoic.zoo.bag_of_tokens:fitted_card"),
        extra={"needs_path": "a tokenizer directory written by echoic tokenizer fit"},
    )
)
