"""PaSST (Koutini et al. 2022) as sizes of :class:`~echoic.encoders.vit.ViTEncoder`.

The Patchout faSt Spectrogram Transformer is a DeiT ViT over PaSST's own 128-bin log-mel at
32 kHz (``passt_mel``: pre-emphasis, centred 1024-point STFT with an 800-sample symmetric Hann
window every 10 ms, Kaldi mel filters to 15 kHz, ``(ln(x + 1e-5) + 4.5) / 5``) with:

- 16 × 16 patches every 10 bins and 10 frames (``Conv2d`` stride 10; the ``*_s16`` models: 16),
  12 patch rows over 128 bins, frequency-major tokens (``conv(x).flatten(2)``) — AST's layout;
- **separate** frequency and time positions: ``freq_new_pos_embed`` (one row per patch row) +
  ``time_new_pos_embed`` (99 steps for 998 frames = 10 s), the time table cut from its start for
  a shorter input — the ViT's ``positions="learned_separable"``, ``position_fit="start"`` (as
  Dasheng's); a longer input stretches it (PaSST itself refuses one);
- a CLS and a distillation token with their own positions (``new_pos_embed``, folded into the
  tokens at conversion); PaSST's pooled output is their mean after the final norm,
  ``(cls_layers[-1] + dist_layers[-1]) / 2``;
- pre-LN blocks, LayerNorm eps 1e-6 (timm's ViT).

Patchout (dropping random time columns, frequency rows or single patches) is a training-time
regularizer: at inference every patch is kept, which is what this encoder runs (``keep_idx``
reproduces unstructured patchout for training). ``passt`` is passt-s (768 wide, 12 blocks, 12
heads, 10-s table); a converted checkpoint stores its full config (``echoic convert``), so PaSST-L
(7 blocks), the 20-s / 30-s tables and the stride-16 models load through theirs.
"""

from __future__ import annotations

from typing import Any

from echoic.encoders.registry import ENCODERS
from echoic.encoders.vit import ViTConfig

__all__ = ["PASST_LAYOUT", "passt_config"]

PASST_LAYOUT: dict[str, Any] = {
    "patch": (16, 16),
    "patch_stride": (10, 10),
    "n_bins": 128,
    "flatten": "freq_major",
    "positions": "learned_separable",
    "position_fit": "start",
    "cls_token": True,
    "dist_token": True,
    "norm_eps": 1e-6,
    "qkv_bias": True,
}
"""The layout of the published PaSST models (stride 10)."""


def passt_config(
    dim: int = 768,
    depth: int = 12,
    heads: int = 12,
    position_grid: tuple[int, int] = (12, 99),
    **fields: Any,
) -> ViTConfig:
    """A :class:`ViTConfig` of the PaSST layout; ``fields`` override it (``patch_stride`` …)."""
    return ViTConfig(
        dim=dim, depth=depth, heads=heads, position_grid=position_grid, **{**PASST_LAYOUT, **fields}
    )


ENCODERS.register("passt", passt_config)
# a short time table: the contract test's clips (12 and 6 steps) are fitted both ways
ENCODERS.register("passt_test", lambda: passt_config(32, 2, 2, position_grid=(12, 8)))
