"""The wav2vec 2.0 family as sizes of :class:`~echoic.encoders.wav.WavEncoder`.

wav2vec 2.0, HuBERT, WavLM and data2vec 1.0 audio share one layout — a seven-layer convolutional
feature encoder (20 ms hop, 25 ms field at 16 kHz), a LayerNorm + Linear feature projection,
convolutional positions and a transformer without a CLS token — and differ in a few switches:

===================  ==========  ==========  ===========  ===============  ====================
layout               conv norm   conv bias   blocks       positions        attention
===================  ==========  ==========  ===========  ===============  ====================
wav2vec 2.0 base     group_norm  no          post-LN      weight-normed    plain
wav2vec 2.0 large*   layer_norm  yes         pre-LN       weight-normed    plain
HuBERT base / large  as wav2vec 2.0 base / large (``feature_norm`` may be off: HuBERT's flag)
WavLM base / large   as HuBERT                                             gated relative bias
data2vec audio       layer_norm  no          post-LN      5 plain convs    plain
===================  ==========  ==========  ===========  ===============  ====================

(* the "stable layer norm" models: LV-60k, XLS-R, HuBERT / WavLM large.) The family names
(``wav2vec2``, ``hubert``, ``wavlm``, ``data2vec_audio``) are the published base sizes; a converted
checkpoint (``echoic convert``, docs/converting.md) names its family and stores its full config,
so any size loads. ``*_test`` sizes are tiny versions of each layout for tests.
"""

from __future__ import annotations

import functools
from typing import Any

from echoic.encoders.registry import ENCODERS
from echoic.encoders.wav import WAV2VEC2_LAYERS, WavConfig

__all__ = ["FAMILIES", "family_config"]

FAMILIES = ("wav2vec2", "hubert", "wavlm", "data2vec_audio")
"""Encoder names of the published families (their base sizes)."""

_LAYOUTS: dict[str, dict[str, Any]] = {
    "wav2vec2": {},
    "hubert": {},
    "wavlm": {"rel_pos_buckets": 320, "rel_pos_max_distance": 800},
    "data2vec_audio": {
        "conv_mode": "layer_norm",
        "pos_conv_mode": "stacked",
        "pos_conv_kernel": 19,
        "pos_conv_layers": 5,
    },
}


def family_config(
    family: str,
    dim: int = 768,
    depth: int = 12,
    heads: int = 12,
    conv_dim: int = 512,
    **fields: Any,
) -> WavConfig:
    """A :class:`WavConfig` of ``family`` (one of :data:`FAMILIES`) at the given size (seven conv
    layers of ``conv_dim`` channels unless ``conv_layers`` is given); ``fields`` override the
    family's layout (e.g. ``norm_first=True`` for the large "stable layer norm" models)."""
    base: dict[str, Any] = {
        "conv_mode": "group_norm",
        "conv_bias": False,
        "norm_first": False,
        "pos_conv_kernel": 128,
        "pos_conv_groups": 16,
        "cls_token": False,
        "mlp_ratio": 4.0,
    }
    base.update(_LAYOUTS[family])
    base.update(fields)
    base.setdefault("conv_layers", tuple((conv_dim, k, s) for k, s in WAV2VEC2_LAYERS))
    return WavConfig(dim=dim, depth=depth, heads=heads, **base)


def _tiny(family: str, **fields: Any) -> WavConfig:
    small: dict[str, Any] = {"pos_conv_kernel": 16, "pos_conv_groups": 4}
    if family == "data2vec_audio":
        small = {"pos_conv_kernel": 5, "pos_conv_groups": 4, "pos_conv_layers": 2}
    if family == "wavlm":
        small["rel_pos_buckets"], small["rel_pos_max_distance"] = 16, 40
    return family_config(family, dim=32, depth=2, heads=2, conv_dim=32, **{**small, **fields})


for _family in FAMILIES:
    ENCODERS.register(_family, functools.partial(family_config, _family))
    ENCODERS.register(f"{_family}_test", functools.partial(_tiny, _family))
STABLE = {"norm_first": True, "conv_mode": "layer_norm", "conv_bias": True}
ENCODERS.register("wav2vec2_stable_test", lambda: _tiny("wav2vec2", **STABLE))
ENCODERS.register("wavlm_stable_test", lambda: _tiny("wavlm", **STABLE))
