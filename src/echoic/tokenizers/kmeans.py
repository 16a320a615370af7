"""``kmeans``: HuBERT-style k-means over frames (a model's layer, or MFCCs for iteration 0).

Hsu et al., 2021 (HuBERT): iteration 1 clusters 39-d MFCC frames (13 + deltas + delta-deltas)
into 100 clusters; later iterations cluster an intermediate layer of the previous model (500
clusters), with scikit-learn's mini-batch k-means (batch 10 000, k-means++ init). Here:

1. the first fit starts the centroids with faiss k-means (``init_iter`` Lloyd iterations,
   seeded) on at most ``init_frames`` frames drawn at random, and each centroid's count is the
   number of those frames it holds;
2. then ``epochs`` passes of mini-batch k-means (Sculley, 2010, scikit-learn's update) over all
   frames in random batches of ``batch_size``: every centroid moves to the running mean of the
   frames it has been assigned, ``c ← c + (Σx − n c) / count``.

The centroids, counts and the number of batches seen are buffers: a saved tokenizer fitted
again (``fit`` on a loaded one, or ``echoic tokenizer fit --resume``) goes on with step 2 from
where it stopped, on new frames or the same. Ids: the nearest centroid (squared L2), optionally
after per-dimension standardisation (``standardize``; off by default, as in HuBERT).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from echoic.errors import ConfigError
from echoic.tokenizers.base import Tokenizer, register
from echoic.tokenizers.codebooks import (
    Standardizer,
    faiss_kmeans,
    nearest,
    shuffled_batches,
    usage_stats,
)


@dataclass
class KMeansConfig:
    n_clusters: int = 100
    batch_size: int = 10000
    epochs: int = 5
    init_frames: int = 50000
    init_iter: int = 20
    standardize: bool = False
    seed: int = 0


@register("kmeans")
class KMeansTokenizer(Tokenizer):
    config_class = KMeansConfig

    def __init__(self, input_dim: int, config: KMeansConfig, target_dim: int | None = None) -> None:
        super().__init__(input_dim, config, target_dim)
        if config.n_clusters < 2 or config.batch_size < 1 or config.epochs < 0:
            raise ConfigError(
                "kmeans needs n_clusters >= 2, batch_size >= 1, epochs >= 0; found "
                f"{config.n_clusters}, {config.batch_size}, {config.epochs}."
            )
        self.norm = Standardizer(input_dim)
        self.centroids: torch.Tensor
        self.counts: torch.Tensor
        self.steps: torch.Tensor
        self.register_buffer("centroids", torch.zeros(config.n_clusters, input_dim))
        self.register_buffer("counts", torch.zeros(config.n_clusters, dtype=torch.float64))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        return (self.config.n_clusters,)

    def prepared(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x) if self.config.standardize else x

    def encode(self, frames: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        b, t, d = frames.shape
        ids = nearest(self.prepared(frames).reshape(b * t, d), self.centroids)
        return ids.reshape(b, t, 1)

    def fit(
        self, inputs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor] | None = None
    ) -> dict[str, float]:
        xs, _ = self.check_fit_data(inputs, targets)
        raw = torch.cat(xs)
        generator = torch.Generator().manual_seed(int(self.config.seed) + int(self.steps))
        if not bool(self.fitted):
            self._initialise(raw, generator)
        x = self.prepared(raw)
        for _ in range(self.config.epochs):
            for rows in shuffled_batches(x.shape[0], self.config.batch_size, generator):
                self._minibatch_step(x[rows])
        ids = nearest(x, self.centroids)
        inertia = (x - self.centroids[ids]).square().sum(1).mean()
        used, perplexity = usage_stats(ids, self.config.n_clusters)
        return self.finish_fit(
            {
                "frames": x.shape[0],
                "steps": int(self.steps),
                "inertia_per_frame": float(inertia),
                "codes_used": used,
                "perplexity": perplexity,
            }
        )

    @torch.no_grad()
    def _initialise(self, raw: torch.Tensor, generator: torch.Generator) -> None:
        if self.config.standardize:
            self.norm.fit(raw)
        x = self.prepared(raw)
        take = min(x.shape[0], self.config.init_frames)
        sample = x[torch.randperm(x.shape[0], generator=generator)[:take]]
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        self.centroids.copy_(
            faiss_kmeans(sample, self.config.n_clusters, self.config.init_iter, seed)
        )
        ids = nearest(sample, self.centroids)
        self.counts.copy_(torch.bincount(ids, minlength=self.config.n_clusters).double())

    @torch.no_grad()
    def _minibatch_step(self, batch: torch.Tensor) -> None:
        ids = nearest(batch, self.centroids)
        k = self.config.n_clusters
        n = torch.bincount(ids, minlength=k).double()
        sums = torch.zeros(k, batch.shape[1], dtype=torch.float64).index_add_(
            0, ids, batch.double()
        )
        new_counts = self.counts + n
        hit = n > 0
        centroids = self.centroids.double()
        moved = centroids + (sums - n[:, None] * centroids) / new_counts.clamp_min(1.0)[:, None]
        self.centroids.copy_(torch.where(hit[:, None], moved, centroids).float())
        self.counts.copy_(new_counts)
        self.steps.add_(1)
