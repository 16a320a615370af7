"""AST and SSAST as sizes of :class:`~echoic.encoders.vit.ViTEncoder`.

The Audio Spectrogram Transformer (Gong et al. 2021) and its self-supervised SSAST (Gong et al.
2022) are DeiT ViTs over a 128-bin Kaldi fbank (:data:`~echoic.features.kaldi.KALDI_FBANK_PRESETS`
``"ast"``) with:

- 16 × 16 patches every 10 bins and 10 frames (a ``Conv2d`` with stride 10: they overlap by 6),
  12 patch rows; a time step every 100 ms reading 160 ms;
- frequency-major tokens (``conv(x).flatten(2)``);
- a learned position table (AST: 12 × 101 for 1024 frames; SSAST's pretraining table: 8 × 64,
  trained with non-overlapping patches, which its downstream code fits to the strided grid);
- a CLS and a distillation token (DeiT's; AST's pooled output is their mean after the final
  norm: ``(cls_layers[-1] + dist_layers[-1]) / 2``);
- pre-LN blocks; LayerNorm eps 1e-12 in transformers' ``ASTModel``, 1e-6 in the original (timm).

``ast`` is transformers' ``ASTConfig()`` (the AudioSet models ``MIT/ast-finetuned-*``); ``ssast``
the SSAST-Base-Patch-400 checkpoint as its code uses it downstream (stride 10, positions centred).
A converted checkpoint stores its full config (``echoic convert``, docs/converting.md), so any
size loads; ``*_test`` are tiny versions for tests.
"""

from __future__ import annotations

from typing import Any

from echoic.encoders.registry import ENCODERS
from echoic.encoders.vit import ViTConfig

__all__ = ["AST_LAYOUT", "ast_config"]

AST_LAYOUT: dict[str, Any] = {
    "patch": (16, 16),
    "n_bins": 128,
    "patch_stride": (10, 10),
    "flatten": "freq_major",
    "positions": "learned",
    "cls_token": True,
    "dist_token": True,
    "qkv_bias": True,
}
"""What AST and SSAST share (beyond size, position table and norm eps)."""


def ast_config(
    dim: int = 768,
    depth: int = 12,
    heads: int = 12,
    position_grid: tuple[int, int] = (12, 101),
    **fields: Any,
) -> ViTConfig:
    """A :class:`ViTConfig` of the AST layout; ``fields`` override it (``norm_eps``,
    ``position_fit``, ``patch_stride`` …)."""
    base: dict[str, Any] = {**AST_LAYOUT, "norm_eps": 1e-12, "position_fit": "start"}
    return ViTConfig(
        dim=dim, depth=depth, heads=heads, position_grid=position_grid, **{**base, **fields}
    )


SSAST: dict[str, Any] = {"position_grid": (8, 64), "position_fit": "centre", "norm_eps": 1e-6}

ENCODERS.register("ast", ast_config)
ENCODERS.register("ssast", lambda: ast_config(**SSAST))
# tiny tables, so that the contract test's clips (12 and 6 time steps) are fitted both ways
ENCODERS.register("ast_test", lambda: ast_config(32, 2, 2, position_grid=(12, 8)))
ENCODERS.register("ssast_test", lambda: ast_config(32, 2, 2, **{**SSAST, "position_grid": (8, 8)}))
