"""``mvq``: multi-codebook (product) vector quantisation of teacher frames, one codebook per head.

SPEAR (Yang et al., 2025) distils multi-codebook VQ (MVQ) codes of teacher features (the
``multi_quantization`` package of icefall: 16 codebooks of 256 codes refined jointly). Here the
standardised frame is rotated by a fixed random orthogonal matrix (seeded; it spreads the variance
over the heads, the cheap half of OPQ), split into ``n_codebooks`` contiguous heads, and each head
is quantised by its own codebook (product quantisation, Jégou et al., 2011): the ids of one frame
are independent descriptions of different parts of it, all equally fine. Codebooks start from
k-means per head (faiss) and are trained by EMA or gradient steps (:mod:`echoic.tokenizers.vq`)
to reconstruct the frames. Deviation from SPEAR's quantiser: product rather than additive
codebooks (no joint refinement of the codes of one frame), so no codebook depends on another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from echoic.errors import ConfigError
from echoic.tokenizers.base import register
from echoic.tokenizers.codebooks import faiss_kmeans, nearest
from echoic.tokenizers.vq import CodebookQuantizer


@dataclass
class MVQConfig:
    n_codebooks: int = 16
    codebook_size: int = 256
    rotate: bool = True
    train: str = "ema"  # "ema" | "gradient"
    epochs: int = 10
    batch_size: int = 1024
    decay: float = 0.99
    learning_rate: float = 1e-3
    init_iter: int = 20
    init_frames: int = 50000
    standardize: bool = True
    seed: int = 0


@register("mvq")
class MVQTokenizer(CodebookQuantizer):
    config_class = MVQConfig

    def __init__(self, input_dim: int, config: MVQConfig, target_dim: int | None = None) -> None:
        if config.n_codebooks > input_dim:
            raise ConfigError(
                f"mvq splits each frame into n_codebooks heads: n_codebooks ({config.n_codebooks})"
                f" must be <= the frame width ({input_dim})."
            )
        super().__init__(input_dim, config, target_dim)
        rotation = torch.linalg.qr(torch.randn(input_dim, input_dim))[0]
        self.rotation: torch.Tensor
        self.register_buffer("rotation", rotation if config.rotate else torch.eye(input_dim))

    def codebook_dims(self) -> list[int]:
        n, d = int(self.config.n_codebooks), self.input_dim
        return [d // n + (1 if i < d % n else 0) for i in range(n)]

    def heads(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.split(x @ self.rotation, self.codebook_dims(), dim=-1))

    def quantize(
        self, x: torch.Tensor, codewords: Sequence[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        words = codewords if codewords is not None else [cb.codebook for cb in self.books()]
        ids = torch.stack(
            [nearest(head, table) for head, table in zip(self.heads(x), words, strict=True)], 1
        )
        return ids, self.decode(ids, words)

    def decode(self, ids: torch.Tensor, codewords: Sequence[torch.Tensor]) -> torch.Tensor:
        rotated = torch.cat([table[ids[:, c]] for c, table in enumerate(codewords)], -1)
        return rotated @ self.rotation.T

    @torch.no_grad()
    def initialise(self, x: torch.Tensor, generator: torch.Generator) -> None:
        for book, head in zip(self.books(), self.heads(x), strict=True):
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
            book.set_codebook(faiss_kmeans(head, book.size, self.config.init_iter, seed))

    @torch.no_grad()
    def ema_step(self, x: torch.Tensor, generator: torch.Generator) -> None:
        for book, head in zip(self.books(), self.heads(x), strict=True):
            book.ema_update(head, book.assign(head), generator)
