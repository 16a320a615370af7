"""Fitting :mod:`echoic.zoo.bow` on unlabelled audio: patch auto-encoders, then k-means.

1. Log-mel of every clip; per-band mean and std over all frames (the normalisation).
2. Per scale: up to ``max_patches`` patches drawn uniformly from all frames; a
   ``P·F → hidden → bottleneck → hidden → P·F`` auto-encoder trained with Adam on the mean squared
   reconstruction error for ``epochs`` passes; the encoder half is kept.
3. Per scale: k-means (k-means++ seeding, Lloyd iterations, empty clusters re-seeded with the
   worst-fit point) on the bottleneck codes of those patches.

Everything is drawn from ``torch.Generator`` s seeded with ``seed``: the same audio and settings
give the same model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from echoic.data.audio import load_audio
from echoic.errors import ConfigError
from echoic.zoo.bow import BowConfig, BowModel, BowNet, patch_decoder, patches


@dataclass
class BowFitConfig:
    """How a :class:`~echoic.zoo.bow.BowModel` is fit."""

    epochs: int = 5
    batch_size: int = 256
    learning_rate: float = 1e-3
    max_patches: int = 50_000
    kmeans_iterations: int = 50
    max_seconds_per_file: float = 30.0
    seed: int = 0


def kmeans(
    points: torch.Tensor, k: int, iterations: int, generator: torch.Generator
) -> torch.Tensor:
    """``(N, d)`` points → ``(k, d)`` centroids (k-means++ seeding, then Lloyd iterations)."""
    points = points.to(torch.float32)
    n = points.shape[0]
    if n < k:
        raise ConfigError(
            f"k-means needs at least k={k} points; found {n}. Fit on more audio or lower "
            "codebook_sizes."
        )
    first = int(torch.randint(n, (1,), generator=generator))
    centroids = points[first : first + 1].clone()
    nearest = torch.cdist(points, centroids).square().squeeze(1)
    for _ in range(1, k):
        total = float(nearest.sum())
        if total <= 0:  # fewer distinct points than k: pick any
            pick = int(torch.randint(n, (1,), generator=generator))
        else:
            pick = int(torch.multinomial(nearest / total, 1, generator=generator))
        centroids = torch.cat([centroids, points[pick : pick + 1]])
        nearest = torch.minimum(nearest, (points - points[pick]).square().sum(1))
    for _ in range(iterations):
        dist = torch.cdist(points, centroids)
        assign = dist.argmin(1)
        counts = torch.bincount(assign, minlength=k)
        sums = torch.zeros_like(centroids).index_add_(0, assign, points)
        updated = sums / counts.clamp_min(1)[:, None].to(points.dtype)
        empty = (counts == 0).nonzero().flatten()
        if empty.numel():
            worst = dist.gather(1, assign[:, None]).squeeze(1).argsort(descending=True)
            updated[empty] = points[worst[: empty.numel()]]
        if torch.equal(updated, centroids):
            break
        centroids = updated
    return centroids


def _train_autoencoder(
    net: BowNet, scale: int, data: torch.Tensor, fit: BowFitConfig, generator: torch.Generator
) -> float:
    """Train ``net.encoders[scale]`` with a fresh decoder on ``data`` ``(N, P·F)``; final loss."""
    encoder = net.encoders[scale]
    decoder = patch_decoder(data.shape[1], net.config.hidden, net.config.bottleneck)
    params = list(encoder.parameters()) + list(decoder.parameters())
    optimiser = torch.optim.Adam(params, lr=fit.learning_rate, foreach=True)
    encoder.train()
    loss_value = float("nan")
    for _ in range(fit.epochs):
        order = torch.randperm(data.shape[0], generator=generator)
        total, count = 0.0, 0
        for start in range(0, data.shape[0], fit.batch_size):
            batch = data[order[start : start + fit.batch_size]]
            loss = torch.nn.functional.mse_loss(decoder(encoder(batch)), batch)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * batch.shape[0]
            count += batch.shape[0]
        loss_value = total / max(1, count)
    encoder.eval()
    return loss_value


def fit_bow_clips(
    clips: Sequence[np.ndarray],
    config: BowConfig | None = None,
    fit: BowFitConfig | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> BowModel:
    """Fit a bow model on mono float32 clips at ``config.sample_rate``."""
    config = config or BowConfig()
    fit = fit or BowFitConfig()
    model = BowModel(config)
    net = model.net
    feats = [model.features(model.prepare(c, None)[0]).to(torch.float32) for c in clips]
    if not feats:
        raise ConfigError("fit-bow found no audio to fit on; pass folders or files with audio.")
    frames = torch.cat(feats)
    net.mean.copy_(frames.mean(0))
    net.std.copy_(frames.std(0).clamp_min(1e-5))
    normed = [net.normalise(f) for f in feats]
    log(f"fit-bow: {len(feats)} clips, {frames.shape[0]} frames of {config.n_mels} bands")
    generator = torch.Generator().manual_seed(fit.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(fit.seed)
        net.encoders.apply(_reset)
    # Draw the same frames for every scale: (clip index, frame index) pairs.
    owners = torch.cat([torch.full((f.shape[0],), i) for i, f in enumerate(normed)])
    rows = torch.cat([torch.arange(f.shape[0]) for f in normed])
    take = torch.randperm(owners.shape[0], generator=generator)[: fit.max_patches]
    take = take.sort().values
    for scale, size in enumerate(config.patch_frames):
        data = torch.cat(
            [
                patches(normed[i], size, rows[take[owners[take] == i]])
                for i in range(len(normed))
                if bool((owners[take] == i).any())
            ]
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(fit.seed + 1 + scale)
            loss = _train_autoencoder(net, scale, data, fit, generator)
        with torch.no_grad():
            codes = net.encoders[scale](data)
        k = config.codebook_sizes[scale]
        net.codebooks[scale].copy_(kmeans(codes, k, fit.kmeans_iterations, generator))
        log(f"fit-bow: scale {size} frames: {data.shape[0]} patches, AE loss {loss:.4f}, k={k}")
    return model


def _reset(module: torch.nn.Module) -> None:
    if isinstance(module, torch.nn.Linear):
        module.reset_parameters()


def fit_bow_files(
    paths: Sequence[str | Path],
    config: BowConfig | None = None,
    fit: BowFitConfig | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> BowModel:
    """Fit on audio files (each decoded mono at the model's rate, at most
    ``fit.max_seconds_per_file`` seconds from its start)."""
    config = config or BowConfig()
    fit = fit or BowFitConfig()
    clips = []
    for path in paths:
        x, _ = load_audio(path, sample_rate=config.sample_rate, duration_s=fit.max_seconds_per_file)
        clips.append(x)
    return fit_bow_clips(clips, config, fit, log)
