"""echoic: self-supervised audio representations — pretrain, load, embed, evaluate.

Public API (imported lazily so ``import echoic.data`` stays light)::

    import echoic
    model = echoic.load("echoic-default")        # or a model directory, or any `echoic models` name
    card = echoic.find_card("echoic-default")    # what it is, without building it
    embedder = echoic.Embedder(model)
    scene = embedder.scene_embeddings(audio, sample_rate=16000)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load": "echoic.cards",
    "save": "echoic.checkpoint",
    "list_models": "echoic.checkpoint",
    "EchoicModel": "echoic.checkpoint",
    "ModelCard": "echoic.cards",
    "find_card": "echoic.cards",
    "list_cards": "echoic.cards",
    "Embedder": "echoic.embed.embedder",
    "load_audio": "echoic.data.audio",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'echoic' has no attribute {name!r}")
