"""Card of ``bow`` (implementation: :mod:`echoic.zoo.bow`; fitted by ``echoic fit-bow``)."""

from __future__ import annotations

from echoic.cards import Origin, lazy
from echoic.zoo.registry import ZooEntry, register

BOW_ENCODER = "bow"  # the encoder name a fitted bow directory's config.json records

register(
    ZooEntry(
        name="bow",
        kind="baseline",
        licence="Apache-2.0 (code); fitted statistics follow the fit audio",
        build=lazy("echoic.zoo.bow:build"),
        notes="bag-of-audio-words: patch auto-encoders + k-means at 2 scales; needs echoic fit-bow",
        embedding_size=128,
        sample_rate=16000,
        checkpoint_encoder=BOW_ENCODER,
        architecture="echoic.zoo.bow.BowModel (patch auto-encoders + k-means on logmel)",
        origin=Origin(source="fit on unlabelled audio with echoic fit-bow"),
        adapt_to_directory=lazy("echoic.zoo.bow:fitted_card"),
        extra={"needs_path": "a model directory written by echoic fit-bow"},
    )
)
