"""AudioMAE, EAT and M2D as sizes of :class:`~echoic.encoders.vit.ViTEncoder`.

Three masked-modelling ViTs published without a PyPI reference (converters in
``echoic.convert.audiomae`` / ``eat`` / ``m2d``, read from their repositories' key layouts; parity
against the original code is unverified, see docs/converting.md):

- **AudioMAE** (Huang et al. 2022, facebookresearch/AudioMAE): timm's ViT-B/16 on AST's Kaldi fbank
  (128 bins, 1024 frames) fed as ``(time, freq)``: 16 × 16 patches as a ``Conv2d`` without padding
  (a partial last patch is dropped), tokens time-major ``t · 8 + f``, a fixed 2-D sin-cos table of
  64 × 8 stored as ``pos_embed`` (kept here as a learned table: the stored values), a CLS token,
  pre-LN blocks, LayerNorm eps 1e-6.
- **EAT** (Chen et al. 2024, cwx-worst-one/EAT): AudioMAE's patches, order and table, but data2vec
  2.0's blocks: post-LN (``post_norm``), the tokens and the CLS normalised once before the first
  block, no final norm.
- **M2D** (Niizumi et al. 2023, nttcslab/m2d): timm's ViT-B/16 on an 80-bin log-mel fed as
  ``(freq, time)``: 5 frequency rows, tokens frequency-major ``f · T + t``, a partial last time
  patch zero-filled (M2D pads the input to whole patches), a 5 × 38 table (6.08 s) cut from its
  start for a shorter input (M2D's own rule), CLS, pre-LN, eps 1e-6. Its embedding is the frequency
  tokens of a step concatenated (``freq_pool="concat"``: 3840 for the base model).

``audiomae``, ``eat`` and ``m2d`` are the base models (768 wide, 12 blocks, 12 heads); the
``*_test`` sizes are tiny ones for tests.
"""

from __future__ import annotations

import functools
from typing import Any

from echoic.encoders.registry import ENCODERS
from echoic.encoders.vit import ViTConfig

__all__ = ["AUDIOMAE_LAYOUT", "EAT_LAYOUT", "M2D_LAYOUT", "mae_family_config"]

AUDIOMAE_LAYOUT: dict[str, Any] = {
    "patch": (16, 16),
    "patch_stride": (16, 16),
    "n_bins": 128,
    "flatten": "time_major",
    "positions": "learned",
    "position_grid": (8, 64),
    "position_fit": "start",
    "cls_token": True,
    "qkv_bias": True,
    "norm_eps": 1e-6,
}
"""AudioMAE's layout: the published models' 1024 frames × 128 bins."""
EAT_LAYOUT: dict[str, Any] = {**AUDIOMAE_LAYOUT, "post_norm": True}
"""EAT's layout: AudioMAE's patches and table, data2vec 2.0's post-LN blocks."""
M2D_LAYOUT: dict[str, Any] = {
    "patch": (16, 16),
    "patch_stride": None,
    "n_bins": 80,
    "flatten": "freq_major",
    "positions": "learned",
    "position_grid": (5, 38),
    "position_fit": "start",
    "cls_token": True,
    "qkv_bias": True,
    "norm_eps": 1e-6,
}
"""M2D's layout: 80 bins, 608 frames (the ``80x608p16x16`` releases)."""
LAYOUTS = {"audiomae": AUDIOMAE_LAYOUT, "eat": EAT_LAYOUT, "m2d": M2D_LAYOUT}


def mae_family_config(
    family: str, dim: int = 768, depth: int = 12, heads: int = 12, **fields: Any
) -> ViTConfig:
    """A :class:`ViTConfig` of ``family``'s layout (``"audiomae"``, ``"eat"``, ``"m2d"``);
    ``fields`` override it."""
    return ViTConfig(dim=dim, depth=depth, heads=heads, **{**LAYOUTS[family], **fields})


def _tiny(family: str) -> ViTConfig:
    # short tables: the contract test's clips (1.3 s, 0.7 s) are fitted both ways
    grid = (5, 6) if family == "m2d" else (8, 6)
    return mae_family_config(family, 32, 2, 2, position_grid=grid)


for _family in LAYOUTS:
    ENCODERS.register(_family, functools.partial(mae_family_config, _family))
    ENCODERS.register(f"{_family}_test", functools.partial(_tiny, _family))
