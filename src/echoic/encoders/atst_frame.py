"""ATST-Frame (Li et al. 2024) as sizes of :class:`~echoic.encoders.vit.ViTEncoder`.

The frame-level Audio Teacher-Student Transformer is a ViT over a 64-bin log-mel in dB
(``centred_mel``: torchaudio's centred 1024-point STFT every 10 ms, 60 Hz – 7.8 kHz,
``AmplitudeToDB(top_db=80)`` per item, then ATST's ``MinMax`` to [-1, 1] as a ``mean`` / ``std``:
``echoic.convert.atst_frame.ATST_FRONTEND``) with:

- full-band 64 × 4 patches every 4 frames (``PatchEmbed_v2``: a partial last patch is cropped),
  one token per 40 ms, time-major (one token per time step);
- one learned position table of 250 steps (10 s; its ``pos_embed`` row 0 belongs to a CLS token
  the frame model does not have), cut from its start for a shorter input (``pos_type="cut"``);
- no CLS token, pre-LN blocks **without a qkv bias**, LayerNorm eps 1e-6, the final
  ``norm_frame``.

``atst_frame`` is FrameAST_base (768 wide, 12 blocks, 12 heads), ``atst_frame_small`` FrameAST_small
(384, 12, 6); ``atst_frame_test`` a tiny one for tests. Longer input: ATST runs 1001-frame
chunks separately; echoic's Embedder chunks with overlap (a converted model recommends 10-s
chunks) and an encoder given more than 250 steps stretches the table.
"""

from __future__ import annotations

from typing import Any

from echoic.encoders.registry import ENCODERS
from echoic.encoders.vit import ViTConfig

__all__ = ["ATST_LAYOUT", "atst_frame_config"]

ATST_LAYOUT: dict[str, Any] = {
    "patch": (64, 4),
    "patch_stride": (64, 4),
    "n_bins": 64,
    "flatten": "time_major",
    "positions": "learned",
    "position_fit": "start",
    "cls_token": False,
    "qkv_bias": False,
    "norm_eps": 1e-6,
}
"""The layout of the published ATST-Frame models."""


def atst_frame_config(
    dim: int = 768,
    depth: int = 12,
    heads: int = 12,
    position_grid: tuple[int, int] = (1, 250),
    **fields: Any,
) -> ViTConfig:
    """A :class:`ViTConfig` of the ATST-Frame layout; ``fields`` override it."""
    return ViTConfig(
        dim=dim, depth=depth, heads=heads, position_grid=position_grid, **{**ATST_LAYOUT, **fields}
    )


ENCODERS.register("atst_frame", atst_frame_config)
ENCODERS.register("atst_frame_small", lambda: atst_frame_config(384, 12, 6))
# a short table: the contract test's clips (32 and 17 steps) are fitted both ways
ENCODERS.register("atst_frame_test", lambda: atst_frame_config(32, 2, 2, position_grid=(1, 20)))
