"""Pieces shared by the tokenizers: standardisation, faiss k-means, nearest codewords, EMA codebooks.

Nearest-codeword search runs in torch (so a tokenizer applies on any device, inside a training
step); k-means fits run in faiss on the CPU (``faiss.Kmeans``, seeded).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from echoic.errors import ConfigError

__all__ = [
    "EMACodebook",
    "Standardizer",
    "faiss_kmeans",
    "nearest",
    "shuffled_batches",
    "usage_stats",
]


class Standardizer(nn.Module):
    """Per-dimension ``(x - mean) / std`` with statistics of the fit frames (buffers)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, x: torch.Tensor, eps: float = 1e-5) -> None:
        """Set the statistics from frames ``(N, dim)``."""
        x64 = x.double()
        self.mean.copy_(x64.mean(0).float())
        self.std.copy_(x64.std(0, correction=0).clamp_min(eps).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def faiss_kmeans(
    x: torch.Tensor, k: int, n_iter: int, seed: int, spherical: bool = False
) -> torch.Tensor:
    """``(k, D)`` float32 centroids of frames ``x`` ``(N, D)`` by faiss k-means (seeded)."""
    import faiss

    if x.shape[0] < k:
        raise ConfigError(
            f"k-means of {k} clusters needs at least {k} frames; found {x.shape[0]}. Fit on more "
            "audio or choose fewer clusters / a smaller codebook."
        )
    data = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
    kmeans = faiss.Kmeans(
        data.shape[1],
        int(k),
        niter=int(n_iter),
        seed=int(seed) % (2**31),
        spherical=spherical,
        verbose=False,
        min_points_per_centroid=1,
        max_points_per_centroid=1 << 20,
    )
    kmeans.train(data)
    return torch.from_numpy(np.array(kmeans.centroids, dtype=np.float32).reshape(k, -1))


def nearest(x: torch.Tensor, codebook: torch.Tensor, chunk: int = 16384) -> torch.Tensor:
    """``(M,)`` int64 index of the nearest (squared L2) row of ``codebook`` ``(K, D)`` for each
    row of ``x`` ``(M, D)``, in chunks of ``chunk`` rows."""
    c_sq = codebook.square().sum(1)
    out = []
    for start in range(0, x.shape[0], chunk):
        part = x[start : start + chunk]
        dist = c_sq[None, :] - 2.0 * part @ codebook.T  # + |x|², the same for every code
        out.append(dist.argmin(1))
    if not out:
        return torch.zeros(0, dtype=torch.long, device=x.device)
    return torch.cat(out)


def shuffled_batches(n: int, batch: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Row indices ``[0, n)`` in a random order, cut into batches of ``batch`` (the last may be
    shorter)."""
    order = torch.randperm(n, generator=generator)
    return list(order.split(max(1, batch)))


class EMACodebook(nn.Module):
    """A codebook ``(K, D)`` updated by exponential moving averages of its assigned vectors.

    ``cosine=True``: codewords and inputs are l2-normalised and the nearest codeword is the one of
    highest cosine similarity (BEATs / BEST-RQ); otherwise squared L2 (VQ-VAE, SoundStream). A
    code whose EMA count falls below ``dead_threshold`` (SoundStream / EnCodec's dead-code
    replacement), or, with ``restart_after > 0``, that no vector chose in the last
    ``restart_after`` updates (Jukebox's restarts), is restarted on a random vector of the batch.
    """

    def __init__(
        self,
        size: int,
        dim: int,
        decay: float = 0.99,
        eps: float = 1e-5,
        cosine: bool = False,
        dead_threshold: float = 1e-3,
        restart_after: int = 0,
    ) -> None:
        super().__init__()
        if size < 2:
            raise ConfigError(f"a codebook needs at least 2 codewords; found {size}.")
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"EMA decay must be in [0, 1); found {decay}.")
        self.size, self.dim, self.decay, self.eps = int(size), int(dim), float(decay), float(eps)
        self.cosine = cosine
        self.dead_threshold = float(dead_threshold)
        self.restart_after = int(restart_after)
        self.codebook: torch.Tensor
        self.cluster_size: torch.Tensor
        self.embed_sum: torch.Tensor
        self.register_buffer("codebook", torch.randn(size, dim))
        self.register_buffer("cluster_size", torch.zeros(size))
        self.register_buffer("embed_sum", torch.zeros(size, dim))
        self.unused_steps: torch.Tensor  # fitting only: not saved
        self.register_buffer("unused_steps", torch.zeros(size, dtype=torch.long), persistent=False)
        if cosine:
            self.codebook.copy_(nn.functional.normalize(self.codebook, dim=-1))

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(x, dim=-1) if self.cosine else x

    @torch.no_grad()
    def set_codebook(self, centroids: torch.Tensor) -> None:
        """Start from ``centroids`` ``(K, D)`` (k-means), with one unit of EMA mass each."""
        centroids = self.prepare(centroids.to(self.codebook))
        self.codebook.copy_(centroids)
        self.embed_sum.copy_(centroids)
        self.cluster_size.fill_(1.0)

    def assign(self, x: torch.Tensor) -> torch.Tensor:
        """``(M,)`` ids of rows of ``x`` ``(M, D)``."""
        x = self.prepare(x)
        if self.cosine:
            return (x @ self.codebook.T).argmax(-1)
        return nearest(x, self.codebook)

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        return nn.functional.embedding(ids, self.codebook)

    @torch.no_grad()
    def ema_update(self, x: torch.Tensor, ids: torch.Tensor, generator: torch.Generator) -> None:
        """One EMA step from vectors ``x`` ``(M, D)`` assigned to ``ids`` ``(M,)``."""
        x = self.prepare(x.detach().float())
        onehot = nn.functional.one_hot(ids, self.size).to(x.dtype)
        counts = onehot.sum(0)
        sums = onehot.T @ x
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1.0 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1.0 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.size * self.eps) * total
        codebook = self.embed_sum / smoothed[:, None]
        self.codebook.copy_(self.prepare(codebook))
        dead = self.cluster_size < self.dead_threshold
        if self.restart_after > 0:
            self.unused_steps.add_(1).masked_fill_(counts > 0, 0)
            dead |= self.unused_steps >= self.restart_after
        n_dead = int(dead.sum())
        if n_dead and x.shape[0]:
            pick = torch.randint(0, x.shape[0], (n_dead,), generator=generator)
            fresh = x[pick.to(x.device)]
            self.codebook[dead] = fresh
            self.embed_sum[dead] = fresh
            self.cluster_size[dead] = 1.0
            self.unused_steps[dead] = 0


def usage_stats(ids: torch.Tensor, size: int) -> tuple[float, float]:
    """(fraction of codes used, perplexity of the code distribution) of ids ``(M,)``."""
    counts = torch.bincount(ids.flatten().cpu(), minlength=size).double()
    p = counts / counts.sum().clamp_min(1.0)
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return float((counts > 0).double().mean()), float(entropy.exp())
