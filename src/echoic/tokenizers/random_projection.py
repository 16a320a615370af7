"""``random_projection``: BEST-RQ's random-projection quantiser (BEATs iteration 0).

Chiu et al., 2022 (BEST-RQ) and Chen et al., 2022 (BEATs, "random-projection tokenizer"): frames
are standardised, projected by a frozen random matrix (Xavier-uniform) to ``codebook_dim`` and
matched to a frozen random codebook (standard normal, l2-normalised) by cosine similarity (the
nearest neighbour of the l2-normalised projection). Nothing is learnt: ``fit`` only measures the
per-dimension mean and standard deviation of the frames (BEST-RQ normalises its input features).
``n_codebooks > 1``: independent projections and codebooks (BEST-RQ's multi-codebook variant).
Defaults: BEATs' 1024 codes; BEST-RQ's 16-d codewords.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from echoic.errors import ConfigError
from echoic.tokenizers.base import Tokenizer, register
from echoic.tokenizers.codebooks import Standardizer, usage_stats


@dataclass
class RandomProjectionConfig:
    codebook_size: int = 1024
    codebook_dim: int = 16
    n_codebooks: int = 1
    standardize: bool = True
    seed: int = 0


@register("random_projection")
class RandomProjectionTokenizer(Tokenizer):
    config_class = RandomProjectionConfig

    def __init__(
        self, input_dim: int, config: RandomProjectionConfig, target_dim: int | None = None
    ) -> None:
        super().__init__(input_dim, config, target_dim)
        if config.codebook_size < 2 or config.codebook_dim < 1 or config.n_codebooks < 1:
            raise ConfigError(
                "random_projection needs codebook_size >= 2, codebook_dim >= 1, n_codebooks >= 1; "
                f"found {config.codebook_size}, {config.codebook_dim}, {config.n_codebooks}."
            )
        self.norm = Standardizer(input_dim)
        projection = torch.empty(config.n_codebooks, input_dim, config.codebook_dim)
        for matrix in projection:
            nn.init.xavier_uniform_(matrix)
        codebook = torch.randn(config.n_codebooks, config.codebook_size, config.codebook_dim)
        self.projection: torch.Tensor
        self.codebook: torch.Tensor
        self.register_buffer("projection", projection)
        self.register_buffer("codebook", nn.functional.normalize(codebook, dim=-1))

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        return (self.config.codebook_size,) * self.config.n_codebooks

    def encode(self, frames: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        x = self.norm(frames) if self.config.standardize else frames
        projected = nn.functional.normalize(
            torch.einsum("btd,cde->btce", x, self.projection), dim=-1
        )
        similarity = torch.einsum("btce,cke->btck", projected, self.codebook)
        return similarity.argmax(-1)

    def fit(
        self, inputs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor] | None = None
    ) -> dict[str, float]:
        xs, _ = self.check_fit_data(inputs, targets)
        frames = torch.cat(xs)
        if self.config.standardize:
            self.norm.fit(frames)
        self.fitted.fill_(True)
        ids = self(frames[None])[0, :, 0]
        used, perplexity = usage_stats(ids, self.config.codebook_size)
        return self.finish_fit(
            {"frames": frames.shape[0], "codes_used": used, "perplexity": perplexity}
        )
