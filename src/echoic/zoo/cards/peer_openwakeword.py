"""Card of the ``openwakeword`` peer (implementation: :mod:`echoic.zoo.peer_openwakeword`)."""

from __future__ import annotations

from echoic.cards import Origin, lazy
from echoic.zoo.registry import ZooEntry, register

INSTALL = (
    "pip install onnxruntime scipy scikit-learn tqdm && pip install --no-deps openwakeword==0.5.1"
)

register(
    ZooEntry(
        name="openwakeword",
        kind="peer",
        licence="NON-COMMERCIAL: models CC BY-NC-SA 4.0 (code Apache-2.0)",
        build=lazy("echoic.zoo.peer_openwakeword:OpenWakeWordModel"),
        requires=("openwakeword", "onnxruntime", "scipy", "sklearn", "tqdm"),
        install=INSTALL,
        notes="Google speech_embedding (openWakeWord 0.5.1 ONNX), 96-d every 80 ms",
        embedding_size=96,
        sample_rate=16000,
        origin=Origin(
            source="PyPI openwakeword 0.5.1 (ONNX models inside the package)",
            package_file="openwakeword:resources/models/embedding_model.onnx",
        ),
    )
)
