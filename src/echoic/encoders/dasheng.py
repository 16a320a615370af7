"""Dasheng (Dinkel et al. 2024) as sizes of :class:`~echoic.encoders.vit.ViTEncoder`.

Dasheng ("deep audio-signal holistic embeddings") is an MAE-pretrained ViT over a 64-bin log-mel
spectrogram in dB (``centred_mel``: torchaudio's centred STFT, 512-point, 10 ms hop, 0–8 kHz,
``AmplitudeToDB(top_db=120)``) with:

- a fixed per-bin normalisation first (its ``init_bn``, a ``BatchNorm2d`` over the mel bins used
  in evaluation mode): ``input_norm``;
- full-band 64 × 4 patches every 4 frames (40 ms), read as a ``Conv2d`` without padding: a
  trailing frame or three that fill no patch are dropped;
- separable learned positions: a time table of 252 steps (10.08 s, its ``target_length`` of 1008
  frames) plus a one-row frequency table, the time table sliced from its start for shorter input;
- no CLS token (``pooling="mean"``; the ``"token"`` variant's CLS, with its position folded in,
  is ``cls_token``), pre-LN blocks, LayerNorm eps 1e-6, optional layer scale.

Longer input: Dasheng's ``forward`` splits it into 10.08-s pieces run separately; echoic's
Embedder chunks long audio itself (a converted model recommends ``chunk_s = 10.08``), and an
encoder given more steps than the table resamples it (what Dasheng's ``load_state_dict`` does for
a model built longer). ``dasheng`` is dasheng_base (768 wide, 12 blocks, 12 heads); the 0.6B
(1280, 32, 16) and 1.2B (1536, 40, 24) models load through their converted configs.
"""

from __future__ import annotations

from typing import Any

from echoic.encoders.registry import ENCODERS
from echoic.encoders.vit import ViTConfig

__all__ = ["DASHENG_LAYOUT", "DASHENG_SIZES", "dasheng_config"]

DASHENG_LAYOUT: dict[str, Any] = {
    "patch": (64, 4),
    "patch_stride": (64, 4),
    "n_bins": 64,
    "flatten": "freq_major",
    "positions": "learned_separable",
    "position_fit": "start",
    "cls_token": False,
    "input_norm": True,
    "norm_eps": 1e-6,
    "qkv_bias": True,
}
"""The layout of every published Dasheng model."""
DASHENG_SIZES: dict[int, tuple[int, int]] = {768: (12, 12), 1280: (32, 16), 1536: (40, 24)}
"""Width → (blocks, heads) of dasheng_base, dasheng_06B and dasheng_12B."""


def dasheng_config(
    dim: int = 768,
    depth: int = 12,
    heads: int = 12,
    position_grid: tuple[int, int] = (1, 252),
    **fields: Any,
) -> ViTConfig:
    """A :class:`ViTConfig` of the Dasheng layout; ``fields`` override it."""
    return ViTConfig(
        dim=dim,
        depth=depth,
        heads=heads,
        position_grid=position_grid,
        **{**DASHENG_LAYOUT, **fields},
    )


ENCODERS.register("dasheng", dasheng_config)
# a short time table: the contract test's clips (32 and 17 steps) are fitted both ways
ENCODERS.register("dasheng_test", lambda: dasheng_config(32, 2, 2, position_grid=(1, 20)))
