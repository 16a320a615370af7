"""What every embedding model offers, echoic's own and baselines/peers alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from echoic.embed.timestamps import InterpolatedFrames

#: Version of the numerics of every embedding path (echoic's Embedder and the zoo models). Bump it
#: in the change that makes an embedding path give different outputs on purpose (a fix in the
#: frontend, the stitching, the resampling...): it enters every ``identity``, so embedding caches
#: keyed by the old identity are not reused. At 1, identities are those from before it existed.
#: Then regenerate ``tests/fixtures/golden_echoic_tiny.*`` (see ``tests/fixtures/README.md``).
NUMERICS_VERSION = 1


def with_numerics_version(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` plus the numerics version, for hashing into an identity. At version 1 the
    payload is returned unchanged, so identities (and caches) from before the version existed
    stay valid; from version 2 on every identity changes with it."""
    if NUMERICS_VERSION == 1:
        return payload
    return {**payload, "numerics_version": NUMERICS_VERSION}


@dataclass
class ClipEmbedding:
    """Embeddings of one clip.

    scene: ``(D,)``; frames: ``(T, D)`` the model's native frame embeddings at ``frame_times_ms``
    ``(T,)``; timestamps: ``(T', D)`` on a regular grid ``timestamps_ms`` ``(T',)`` (hop ≤ 50 ms
    by default, every time ≤ the clip's duration).
    """

    scene: torch.Tensor
    frames: torch.Tensor
    frame_times_ms: torch.Tensor
    timestamps: torch.Tensor
    timestamps_ms: torch.Tensor
    # set only when asked for (Embedder.embed(..., lazy_timestamps=True)): then ``timestamps`` is
    # empty (0, D) and this computes its rows on demand, so a long file's are never held whole
    lazy_timestamps: InterpolatedFrames | None = None


@runtime_checkable
class EmbeddingModel(Protocol):
    """The interface ``echoic embed``, ``echoic eval`` and the HEAR API use.

    ``label`` names the model in every output (untrained models say so); ``identity`` is a stable
    string that changes whenever the embeddings would (used as a cache key); ``min_samples`` is
    the shortest input that carries information (shorter clips are padded or rejected by callers).
    """

    # Read-only properties: implementations may use plain attributes or properties.
    @property
    def label(self) -> str: ...
    @property
    def identity(self) -> str: ...
    @property
    def sample_rate(self) -> int: ...
    @property
    def embedding_size(self) -> int: ...
    @property
    def min_samples(self) -> int: ...

    def embed(
        self, waveforms: Sequence[torch.Tensor | np.ndarray], sample_rate: int | None = None
    ) -> list[ClipEmbedding]: ...


class EmbeddingMethods:
    """``scene_embeddings`` / ``timestamp_embeddings`` for any class with an ``embed`` method."""

    def embed(
        self, waveforms: Sequence[torch.Tensor | np.ndarray], sample_rate: int | None = None
    ) -> list[ClipEmbedding]:
        raise NotImplementedError

    def scene_embeddings(
        self, waveforms: Sequence[torch.Tensor | np.ndarray], sample_rate: int | None = None
    ) -> torch.Tensor:
        """``(B, D)`` scene embeddings."""
        return torch.stack([e.scene for e in self.embed(waveforms, sample_rate)])

    def timestamp_embeddings(
        self, waveforms: Sequence[torch.Tensor | np.ndarray], sample_rate: int | None = None
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per clip: ``(T, D)`` embeddings and ``(T,)`` timestamps in ms."""
        return [(e.timestamps, e.timestamps_ms) for e in self.embed(waveforms, sample_rate)]
