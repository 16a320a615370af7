"""Patchout (PaSST, Koutini et al. 2022): dropping patch tokens at training time.

Three kinds, combined, drawn once per batch and shared by its items (as PaSST draws them):

- ``time``: that many whole **time columns** (every frequency patch of a time step);
- ``freq``: that many whole **frequency rows** (every time step of a patch row);
- ``random``: that fraction of the tokens left after the structured drops, anywhere.

At least one column and one row always survive (counts are capped at ``n - 1``), and so does at
least one token. Patchout runs only while the module is in training mode (``module.training``):
in eval every token is kept, so exported models, embeddings and EMA teachers (always in eval) are
unaffected. Its randomness comes from torch's global generator, like dropout and drop-path.

How it composes with the caller (:class:`~echoic.encoders.vit.ViTEncoder`):

- ``forward(features)`` (no ``keep_idx``): the dropped tokens never enter the blocks, which is
  where patchout saves time and memory; the output holds the surviving tokens only, with their
  ``token_index`` / ``time_index`` / ``freq_index`` (as a ``keep_idx`` call would). Pooled and
  supervised uses read it as any subset.
- the caller chooses the tokens (``forward(features, keep_idx)``: MAE, EAT, M2D; or the full grid
  through ``embed_tokens`` → ``forward_tokens``: SSAST): the dropped tokens among them are marked
  as padding — no other token attends to them and the output's ``padding_mask`` says so — while
  every requested token still comes back, so the objective's masking and targets are untouched.
  This regularises like PaSST's patchout but saves no compute.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from echoic.errors import ConfigError
from echoic.layers.patch_layout import PatchLayout

__all__ = ["PatchoutConfig", "kept_index", "patchout_dropped"]


@dataclass
class PatchoutConfig:
    """What to drop in training (module docstring): ``time`` columns and ``freq`` rows (counts),
    and a ``random`` fraction of the remaining tokens."""

    time: int = 0
    freq: int = 0
    random: float = 0.0

    def __post_init__(self) -> None:
        for name in ("time", "freq"):
            value = getattr(self, name)
            if int(value) != value or value < 0:
                raise ConfigError(
                    f"patchout.{name} is a number of whole {name} patches to drop (an integer >= "
                    f"0); found {value!r}."
                )
            setattr(self, name, int(value))
        if not 0.0 <= self.random < 1.0:
            raise ConfigError(
                f"patchout.random is the fraction of tokens to drop, in [0, 1); found "
                f"{self.random!r}."
            )

    @property
    def active(self) -> bool:
        return bool(self.time or self.freq or self.random)


def patchout_dropped(
    config: PatchoutConfig, layout: PatchLayout, grid: tuple[int, int], device: torch.device
) -> torch.Tensor | None:
    """``(N,)`` bool over the token grid, True on the tokens dropped for this batch; None when
    nothing is dropped. ``layout`` gives each token's (time, freq) coordinates."""
    n_freq, n_time = grid
    n_tokens = n_freq * n_time
    if not config.active or n_tokens < 2:
        return None
    token = torch.arange(n_tokens)
    time_index, freq_index = layout.coordinates(token, grid)
    columns = torch.randperm(n_time)[: min(config.time, n_time - 1)]
    rows = torch.randperm(n_freq)[: min(config.freq, n_freq - 1)]
    dropped = torch.isin(time_index, columns) | torch.isin(freq_index, rows)
    if config.random:
        left = (~dropped).nonzero()[:, 0]
        count = min(round(config.random * len(left)), len(left) - 1)
        dropped[left[torch.randperm(len(left))[:count]]] = True
    return dropped.to(device) if bool(dropped.any()) else None


def kept_index(dropped: torch.Tensor, batch: int) -> torch.Tensor:
    """``(B, K)`` int64 ascending indices of the tokens that survive ``dropped (N,)``."""
    keep = (~dropped).nonzero()[:, 0]
    return keep[None].expand(batch, -1)
