"""Spatial masked autoencoder (``spatial_mae``): GRAM (Yuksel et al. 2025) with an MW-MAE decoder.

GRAM learns general-purpose *spatial* audio representations with a masked autoencoder over
multichannel spectrograms (binaural: a log-mel per ear; first-order ambisonics: four log-mels
plus three intensity-vector channels). Each patch spans the same time-frequency cell of every
channel: the ViT is built with ``in_channels = C`` (the frontend's ``out_channels``, e.g.
``spatial_logmel``) and embeds ``C * patch_f * patch_t`` values per token with one linear map.
Hidden patches are dropped before the encoder (as :mod:`echoic.objectives.mae`), and the decoder
reconstructs every channel of every hidden patch. Targets are normalised per patch over all of
its channels together (``norm_pix_loss``), which keeps the level and phase differences between
channels — the spatial cues — in what the model must predict.

Multi-window decoder (MW-MAE, Yadav et al. 2024). Every decoder block has heads of different
reach: head ``h`` with ``window_sizes[h] = w > 0`` attends locally, ``w = 0`` globally. Positions
are grid tokens in the encoder's token order (time-major for the ViT: ``t * n_freq + f``).

- ``window_kind="partition"`` (MW-MAE's): the grid tokens are cut into consecutive,
  non-overlapping windows of ``w`` tokens (the last may be shorter); a token attends to its own
  window only.
- ``window_kind="sliding"``: a token attends to the tokens at most ``w // 2`` positions away.

Summary tokens (the encoder's CLS) are global: local heads let them attend to each other only and
grid tokens not attend to them; global heads see everything. Padding keys are excluded and every
token attends at least to itself. Like MW-MAE, each local head of each block adds a learned bias
per relative offset (``relative_bias``; offsets clamped to the longest window's reach).

Defaults follow GRAM's released binaural model (GRAM-T): 80% random masking, a 512-wide decoder
of 8 blocks with 8 heads of windows ``(2, 5, 10, 25, 50, 100, 0, 0)``, normalised-patch MSE on the
hidden patches. Deviations:

- Windows are attention masks over the whole sequence: the same attention as MW-MAE's window
  partition (which softmaxes inside each window) without its "token count divisible by every
  window" requirement, at ``O(N²)`` rather than ``O(N w)`` memory per local head.
- GRAM renders its reverberant, noisy scenes on the fly; here the scenes are whatever
  multichannel audio ``data.train`` lists (the loader keeps the frontend's channel count).
- GRAM feeds the log-mels alone (plus intensity vectors for ambisonics); the recipes here use
  ``spatial_logmel``, which also appends explicit ILD / IPD channels (``interchannel: none``
  gives GRAM's binaural input), and 16 × 16 patches instead of GRAM's 16 × 8.
- Relative-bias tables start at N(0, 0.02²) (MW-MAE: truncated normal).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from echoic.encoders.base import Encoder, EncoderSpec
from echoic.errors import ConfigError
from echoic.features.base import check_choice
from echoic.objectives.base import register, require_keep_idx
from echoic.objectives.mae import MAEConfig, MAEObjective

__all__ = ["SpatialMAEConfig", "SpatialMAEObjective", "window_mask", "window_reach"]

WINDOW_KINDS = ("partition", "sliding")


@dataclass
class SpatialMAEConfig(MAEConfig):
    """Settings of :class:`SpatialMAEObjective`: :class:`MAEConfig` plus the decoder's windows.

    window_sizes: one per decoder head, in tokens; 0 = global attention.
    window_kind: ``"partition"`` (MW-MAE's non-overlapping windows) or ``"sliding"`` (± w // 2).
    relative_bias: a learned bias per relative offset in every local head of every block.
    """

    decoder_heads: int = 8
    window_sizes: tuple[int, ...] = (2, 5, 10, 25, 50, 100, 0, 0)
    window_kind: str = "partition"
    relative_bias: bool = True

    def __post_init__(self) -> None:
        self.window_sizes = tuple(int(w) for w in self.window_sizes)
        check_choice(self, "window_kind", WINDOW_KINDS)
        if len(self.window_sizes) != self.decoder_heads:
            raise ConfigError(
                f"SpatialMAEConfig.window_sizes gives a window per decoder head; found "
                f"{len(self.window_sizes)} windows for decoder_heads={self.decoder_heads}. List "
                f"{self.decoder_heads} sizes (0 = a global head), e.g. "
                f"{[2 ** (i + 1) for i in range(self.decoder_heads - 1)] + [0]}."
            )
        if any(w < 0 for w in self.window_sizes):
            raise ConfigError(
                f"SpatialMAEConfig.window_sizes must be >= 0 tokens (0 = global); found "
                f"{list(self.window_sizes)}."
            )


def window_reach(size: int, kind: str) -> int:
    """Largest ``|key - query|`` a window of ``size`` tokens allows (0 for a global head)."""
    if size == 0:
        return 0
    return size - 1 if kind == "partition" else size // 2


def window_mask(
    window_sizes: tuple[int, ...],
    n_tokens: int,
    n_prefix: int = 0,
    kind: str = "partition",
    device: torch.device | None = None,
) -> torch.Tensor:
    """``(H, n_prefix + N, n_prefix + N)`` bool, True where query (row) may attend key (column).

    Local heads (``window_sizes[h] > 0``) keep grid tokens within their window (see the module
    docstring) and summary tokens among themselves; global heads (0) allow everything.
    """
    total = n_prefix + n_tokens
    index = torch.arange(n_tokens, device=device)
    masks = []
    for size in window_sizes:
        if size == 0:
            masks.append(torch.ones(total, total, dtype=torch.bool, device=device))
            continue
        if kind == "partition":
            local = (index[:, None] // size) == (index[None, :] // size)
        else:
            local = (index[None, :] - index[:, None]).abs() <= size // 2
        mask = torch.zeros(total, total, dtype=torch.bool, device=device)
        mask[:n_prefix, :n_prefix] = True
        mask[n_prefix:, n_prefix:] = local
        masks.append(mask)
    return torch.stack(masks)


@register("spatial_mae")
class SpatialMAEObjective(MAEObjective):
    """MAE over multichannel patches with a multi-window (local + global heads) decoder."""

    config_class = SpatialMAEConfig

    @classmethod
    def check_encoder(cls, spec: EncoderSpec) -> None:
        require_keep_idx("spatial_mae", spec)

    def __init__(self, encoder: Encoder, config: SpatialMAEConfig) -> None:
        super().__init__(encoder, config)
        self.config: SpatialMAEConfig = config
        sizes = config.window_sizes
        self.local_heads = [h for h, size in enumerate(sizes) if size > 0]
        self.reach = max((window_reach(size, config.window_kind) for size in sizes), default=0)
        self.window_bias: nn.Parameter | None = None
        if config.relative_bias and self.local_heads:
            table = torch.randn(config.decoder_depth, len(self.local_heads), 2 * self.reach + 1)
            self.window_bias = nn.Parameter(table * 0.02)

    def attention_bias(self, block: int, n_tokens: int, n_prefix: int) -> torch.Tensor | None:
        """``(H, n_prefix + N, n_prefix + N)`` learned relative-offset bias of decoder ``block``
        (zero on global heads and summary tokens), or None without ``relative_bias``."""
        if self.window_bias is None:
            return None
        table = self.window_bias[block]  # (L, 2 * reach + 1)
        index = torch.arange(n_tokens, device=table.device)
        offset = (index[None, :] - index[:, None]).clamp(-self.reach, self.reach) + self.reach
        total = n_prefix + n_tokens
        bias = table.new_zeros(self.config.decoder_heads, total, total)
        heads = torch.tensor(self.local_heads, device=table.device)
        bias[heads, n_prefix:, n_prefix:] = table[:, offset]
        return bias

    def run_decoder_blocks(
        self, tokens: torch.Tensor, padding: torch.Tensor, n_prefix: int
    ) -> torch.Tensor:
        """tokens ``(B, n_prefix + N, W)``, padding ``(B, n_prefix + N)``: the blocks with each
        head's window (:func:`window_mask`) and, per block, its relative bias."""
        n_tokens = tokens.shape[1] - n_prefix
        c = self.config
        allowed = window_mask(c.window_sizes, n_tokens, n_prefix, c.window_kind, tokens.device)
        attn_mask = allowed[None]  # (1, H, T, T)
        if bool(padding.any()):  # no padding keys; a token always sees itself (no empty rows)
            itself = torch.eye(padding.shape[1], dtype=torch.bool, device=padding.device)
            keys = ~padding[:, None, None, :] | itself[None, None]
            attn_mask = attn_mask & keys  # (B, H, T, T)
        for index, block in enumerate(self.decoder_blocks):
            bias = self.attention_bias(index, n_tokens, n_prefix)
            tokens = block(tokens, attn_mask, bias=None if bias is None else bias.to(tokens.dtype))
        return tokens
