"""``rvq``: residual vector quantisation of (teacher) frames, k-means start + EMA codebooks.

Zeghidour et al., 2021 (SoundStream) and Défossez et al., 2022 (EnCodec): stage ``c`` quantises
the residual the stages before it left, ``r_0 = x``, ``id_c = nearest(r_c)``, ``r_{c+1} = r_c -
e_c[id_c]``; the reconstruction is the sum of the chosen codewords, so the first codebook is the
coarsest description and each further one refines it. Codebooks start from k-means of the
residuals (faiss, stage by stage) and are trained by EMA (default) or gradient steps
(:mod:`echoic.tokenizers.vq`) to reconstruct the frames. MERT's targets are the 8 codebooks of
1024 codes of EnCodec at 6 kbps (the defaults here); where no pretrained codec is at hand, an rvq
tokenizer fit on the corpus's acoustic frames (``--input features``) stands in for it. Unlike a
codec there is no encoder / decoder network: the codebooks quantise the frames they are given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from echoic.tokenizers.base import register
from echoic.tokenizers.codebooks import faiss_kmeans, nearest
from echoic.tokenizers.vq import CodebookQuantizer


@dataclass
class RVQConfig:
    n_codebooks: int = 8
    codebook_size: int = 1024
    train: str = "ema"  # "ema" | "gradient"
    epochs: int = 10
    batch_size: int = 1024
    decay: float = 0.99
    learning_rate: float = 1e-3
    init_iter: int = 20
    init_frames: int = 50000
    standardize: bool = True
    seed: int = 0


@register("rvq")
class RVQTokenizer(CodebookQuantizer):
    config_class = RVQConfig

    def codebook_dims(self) -> list[int]:
        return [self.input_dim] * int(self.config.n_codebooks)

    def quantize(
        self, x: torch.Tensor, codewords: Sequence[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        words = codewords if codewords is not None else [cb.codebook for cb in self.books()]
        residual = x
        ids = []
        for table in words:
            stage = nearest(residual, table)
            residual = residual - table[stage]
            ids.append(stage)
        return torch.stack(ids, 1), x - residual

    def decode(self, ids: torch.Tensor, codewords: Sequence[torch.Tensor]) -> torch.Tensor:
        out = torch.zeros(ids.shape[0], self.input_dim, device=ids.device)
        for c, table in enumerate(codewords):
            out = out + table[ids[:, c]]
        return out

    @torch.no_grad()
    def initialise(self, x: torch.Tensor, generator: torch.Generator) -> None:
        residual = x
        for book in self.books():
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
            book.set_codebook(faiss_kmeans(residual, book.size, self.config.init_iter, seed))
            residual = residual - book.lookup(book.assign(residual))

    @torch.no_grad()
    def ema_step(self, x: torch.Tensor, generator: torch.Generator) -> None:
        residual = x
        for book in self.books():
            ids = book.assign(residual)
            quantised = book.lookup(ids)
            book.ema_update(residual, ids, generator)
            residual = residual - quantised
