"""``random_vit_tiny``: the echoic ViT-tiny encoder at a fixed random initialisation.

The floor any self-supervised training must beat: same frontend (Kaldi fbank, 128 bins), encoder
(``vit_tiny``: 192 wide, 12 blocks) and Embedder as a trained echoic model, but weights drawn with
``torch.manual_seed(RANDOM_VIT_SEED)`` (seed 1). Note ``echoic-untrained-tiny`` (what
``echoic-default`` falls back to in a checkout without a bundled model) is also an untrained
``vit_tiny`` but drawn with seed 0; this entry has its own seed so that the baseline row stays the
same whatever the default is.
"""

from __future__ import annotations

from typing import Any

import torch

from echoic.checkpoint import EchoicModel, ModelConfig
from echoic.embed.embedder import Embedder
from echoic.zoo.cards.random_vit_tiny import RANDOM_VIT_SEED


def random_vit_model(seed: int = RANDOM_VIT_SEED, encoder: str = "vit_tiny") -> EchoicModel:
    """The untrained echoic model drawn with ``seed`` (the global RNG state is left untouched)."""
    config = ModelConfig(
        encoder=encoder,
        frontend="kaldi_fbank",
        name=f"random_{encoder}" + ("" if seed == RANDOM_VIT_SEED else f"_seed{seed}"),
        untrained=True,
        licence="Apache-2.0",
        provenance={"origin": "fixed random initialisation", "seed": seed},
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = EchoicModel(config)
    return model.eval()


def build(seed: int = RANDOM_VIT_SEED, encoder: str = "vit_tiny", **options: Any) -> Embedder:
    """An :class:`~echoic.embed.embedder.Embedder` over :func:`random_vit_model`; ``options`` are
    :class:`~echoic.embed.embedder.EmbedConfig` fields (``layer``, ``chunk_s`` …)."""
    return Embedder(random_vit_model(seed, encoder), **options)
