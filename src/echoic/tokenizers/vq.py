"""The shared shape of ``rvq`` and ``mvq``: codebooks that quantise (standardised) teacher frames.

A :class:`CodebookQuantizer` holds ``n_codebooks`` :class:`~echoic.tokenizers.codebooks.EMACodebook`
s over the standardised frames; subclasses say how frames map to codewords (residual stages or
heads) in :meth:`CodebookQuantizer.quantize`. Fitting: k-means start (:meth:`initialise`), then
``epochs`` passes in random mini-batches of either

* ``train="ema"``: every codebook moves by EMA of the vectors assigned to it (VQ-VAE-2 /
  SoundStream / EnCodec), with dead codes restarted on batch vectors;
* ``train="gradient"``: the codewords are optimised jointly with Adam on the reconstruction error
  of the batch, the ids held at their current nearest codewords. (With the frames fixed, the
  straight-through estimator of a trained encoder has nothing to pass through, and this is what
  remains of straight-through training: gradient steps on the codewords.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from echoic.errors import ConfigError
from echoic.tokenizers.base import Tokenizer
from echoic.tokenizers.codebooks import EMACodebook, Standardizer, shuffled_batches, usage_stats

__all__ = ["CodebookQuantizer"]

TRAIN_MODES = ("ema", "gradient")


class CodebookQuantizer(Tokenizer):
    """Base of ``rvq`` / ``mvq``; the config has ``codebook_size``, ``n_codebooks``, ``train``,
    ``epochs``, ``batch_size``, ``decay``, ``learning_rate``, ``init_iter``, ``init_frames``,
    ``standardize``, ``seed``."""

    def __init__(self, input_dim: int, config: object, target_dim: int | None = None) -> None:
        super().__init__(input_dim, config, target_dim)
        c = self.config
        if c.train not in TRAIN_MODES:
            raise ConfigError(
                f"{self.name}: train must be one of {TRAIN_MODES}; found {c.train!r}."
            )
        if c.n_codebooks < 1 or c.codebook_size < 2:
            raise ConfigError(
                f"{self.name} needs n_codebooks >= 1 and codebook_size >= 2; found "
                f"{c.n_codebooks}, {c.codebook_size}."
            )
        self.norm = Standardizer(input_dim)
        self.codebooks = nn.ModuleList(
            EMACodebook(c.codebook_size, dim, decay=c.decay) for dim in self.codebook_dims()
        )

    # ------------------------------------------------------------------ subclasses
    def codebook_dims(self) -> list[int]:
        raise NotImplementedError

    def quantize(
        self, x: torch.Tensor, codewords: Sequence[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardised ``x`` ``(M, D)`` → ids ``(M, n_codebooks)`` and reconstruction ``(M, D)``
        (from ``codewords``, default the codebooks', so gradients can reach trainable copies)."""
        raise NotImplementedError

    def initialise(self, x: torch.Tensor, generator: torch.Generator) -> None:
        """Start the codebooks by k-means on standardised frames ``x`` ``(M, D)``."""
        raise NotImplementedError

    def ema_step(self, x: torch.Tensor, generator: torch.Generator) -> None:
        """One EMA update of every codebook on the batch ``x`` ``(M, D)``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared
    def books(self) -> list[EMACodebook]:
        """The codebooks, typed."""
        return [cb for cb in self.codebooks if isinstance(cb, EMACodebook)]

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        return (int(self.config.codebook_size),) * int(self.config.n_codebooks)

    def standardised(self, frames: torch.Tensor) -> torch.Tensor:
        return self.norm(frames) if self.config.standardize else frames

    def encode(self, frames: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        b, t, d = frames.shape
        ids, _ = self.quantize(self.standardised(frames).reshape(b * t, d))
        return ids.reshape(b, t, -1)

    @torch.no_grad()
    def reconstruct(self, ids: torch.Tensor) -> torch.Tensor:
        """Frames ``(..., input_dim)`` in input units from ids ``(..., n_codebooks)``."""
        flat = ids.reshape(-1, ids.shape[-1])
        recon = self.decode(flat, [cb.codebook for cb in self.books()])
        if self.config.standardize:
            recon = recon * self.norm.std + self.norm.mean
        return recon.reshape(*ids.shape[:-1], self.input_dim)

    def decode(self, ids: torch.Tensor, codewords: Sequence[torch.Tensor]) -> torch.Tensor:
        """Standardised reconstruction ``(M, D)`` of ids ``(M, n_codebooks)``."""
        raise NotImplementedError

    def fit(
        self, inputs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor] | None = None
    ) -> dict[str, float]:
        xs, _ = self.check_fit_data(inputs, targets)
        raw = torch.cat(xs)
        c = self.config
        generator = torch.Generator().manual_seed(int(c.seed))
        if c.standardize:
            self.norm.fit(raw)
        x = self.standardised(raw)
        take = min(x.shape[0], c.init_frames)
        self.initialise(x[torch.randperm(x.shape[0], generator=generator)[:take]], generator)
        if c.train == "ema":
            for _ in range(c.epochs):
                for rows in shuffled_batches(x.shape[0], c.batch_size, generator):
                    self.ema_step(x[rows], generator)
        else:
            self._gradient_fit(x, generator)
        return self.finish_fit(self.quality(x))

    def _gradient_fit(self, x: torch.Tensor, generator: torch.Generator) -> None:
        c = self.config
        params = [nn.Parameter(cb.codebook.clone()) for cb in self.books()]
        optimiser = torch.optim.Adam(params, lr=c.learning_rate)
        for _ in range(c.epochs):
            for rows in shuffled_batches(x.shape[0], c.batch_size, generator):
                with torch.no_grad():
                    ids, _ = self.quantize(x[rows], [p.detach() for p in params])
                loss = (self.decode(ids, params) - x[rows]).square().mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        with torch.no_grad():
            for cb, p in zip(self.books(), params, strict=True):
                cb.codebook.copy_(p)

    @torch.no_grad()
    def quality(self, x: torch.Tensor) -> dict[str, float]:
        """Relative reconstruction error (of the variance about the mean) with the first codebook
        and with all, and the code usage, on standardised frames ``x``."""
        ids, recon = self.quantize(x)
        variance = (x - x.mean(0)).square().sum().clamp_min(1e-12)
        stats = {
            "frames": float(x.shape[0]),
            "relative_error": float((x - recon).square().sum() / variance),
        }
        if self.name == "rvq":  # the error of the coarsest stage alone (residual codebooks)
            coarse = self.books()[0].lookup(ids[:, 0])
            stats["relative_error_first_codebook"] = float((x - coarse).square().sum() / variance)
        used = [usage_stats(ids[:, i], self.config.codebook_size) for i in range(ids.shape[1])]
        stats["codes_used"] = sum(u for u, _ in used) / len(used)
        stats["perplexity"] = sum(p for _, p in used) / len(used)
        return stats
