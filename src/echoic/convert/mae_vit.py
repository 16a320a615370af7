"""What the AudioMAE, EAT and M2D converters share: timm-style ViT weights onto echoic's ViT.

The three repositories save ``torch.save`` dicts of a timm ``VisionTransformer`` (or data2vec 2.0's
copy of its blocks): fused ``attn.qkv`` (rows ``[q | k | v]``, heads contiguous — echoic's order),
``attn.proj``, ``norm1`` / ``norm2``, ``mlp.fc1`` / ``mlp.fc2`` under ``blocks.{i}``; a
``Conv2d(1, D, 16, stride 16)`` patch projection; and a position table of one row per patch (after a
CLS row in timm's ``pos_embed``). What differs is which spectrogram axis the image's height is
(AudioMAE and EAT feed ``(time, freq)``, M2D ``(freq, time)``), and so the kernel's axes and the
table's row order: the helpers take ``time_first`` to say which.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from echoic.convert.base import ConversionError, StateReader
from echoic.encoders.mae_family import mae_family_config
from echoic.encoders.vit import ViTConfig

__all__ = [
    "BLOCK_PARTS",
    "block_depth",
    "grid_table",
    "is_m2d",
    "is_timm_vit",
    "map_blocks",
    "map_timm_vit",
    "patch_projection",
    "timm_heads",
    "timm_vit_config",
]

BLOCK_PARTS = ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2")
TIMM_VIT_MARKERS = ("pos_embed", "cls_token", "patch_embed.proj.weight", "blocks.0.attn.qkv.weight")
"""Names every timm ViT state dict holds (AudioMAE, M2D)."""
OTHER_VIT_MARKERS = ("norm_frame.weight", "new_pos_embed", "time_new_pos_embed", "time_pos_embed")
"""Names of the other ViT formats (ATST-Frame, PaSST, Dasheng): never AudioMAE / M2D."""
M2D_MARKERS = ("norm_stats",)
M2D_PREFIXES = ("target_blocks.", "module.ar.runtime.backbone.", "backbone.blocks.")


def is_timm_vit(names: set[str]) -> bool:
    """Whether a checkpoint's pickled names are those of a timm ViT state dict (bare or under a
    prefix M2D uses) that no other converter claims."""
    bare = {re.sub(r"^(module\.ar\.runtime\.backbone\.|backbone\.)", "", n) for n in names}
    return all(m in bare for m in TIMM_VIT_MARKERS) and not any(
        n == m or n.endswith("." + m) for n in names for m in OTHER_VIT_MARKERS
    )


def is_m2d(file: Path, names: set[str]) -> bool:
    """M2D's evidence: its normalisation statistics, its target encoder or wrappers, or the
    ``m2d_…`` folder / file name its runtime reads the geometry from."""
    return (
        any(m in names for m in M2D_MARKERS)
        or any(n.startswith(M2D_PREFIXES) for n in names)
        or file.parent.name.startswith("m2d")
        or file.stem.startswith("m2d")
    )


def block_depth(state: Mapping[str, torch.Tensor], prefix: str = "blocks.") -> int:
    """The number of blocks ``prefix{i}.`` (indices 0 … n-1, all present)."""
    found = {int(m.group(1)) for k in state if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))}
    if not found or found != set(range(len(found))):
        raise ConversionError(
            f"blocks under {prefix!r} are missing or not numbered 0…n-1: {found}."
        )
    return len(found)


def patch_projection(kernel: torch.Tensor, time_first: bool, where: str) -> torch.Tensor:
    """A ``Conv2d`` patch kernel ``(D, 1, a, b)`` as echoic's ``(D, patch_f · patch_t)`` projection
    (pixels ``(freq, time)``): transposed when the source image is ``(time, freq)``."""
    if kernel.ndim != 4 or kernel.shape[1] != 1:
        raise ConversionError(
            f"{where}: patch kernel of shape {tuple(kernel.shape)}; an audio ViT reads one "
            "spectrogram channel, (D, 1, h, w)."
        )
    pixels = kernel[:, 0].transpose(1, 2) if time_first else kernel[:, 0]
    return pixels.reshape(kernel.shape[0], -1)


def grid_table(rows: torch.Tensor, n_freq: int, time_first: bool, where: str) -> torch.Tensor:
    """Patch positions ``(N, D)`` in the source's token order as echoic's ``(F, T, D)`` table:
    time-major rows ``t · n_freq + f`` when the image is ``(time, freq)``, else ``f · T + t``."""
    count, dim = rows.shape
    if n_freq < 1 or count % n_freq:
        raise ConversionError(
            f"{where}: {count} position rows do not fill a grid of {n_freq} frequency rows."
        )
    n_time = count // n_freq
    if time_first:
        return rows.reshape(n_time, n_freq, dim).transpose(0, 1).contiguous()
    return rows.reshape(n_freq, n_time, dim)


def map_blocks(
    src: StateReader, depth: int, qkv_bias: bool, source: str = "blocks."
) -> dict[str, torch.Tensor]:
    """``blocks.{i}.*`` of echoic's ViT from the same-named timm / data2vec 2.0 weights."""
    out: dict[str, torch.Tensor] = {}
    for i in range(depth):
        for part in BLOCK_PARTS:
            for p in ("weight", "bias"):
                if part != "attn.qkv" or p == "weight" or qkv_bias:
                    out[f"blocks.{i}.{part}.{p}"] = src.take(f"{source}{i}.{part}.{p}")
    return out


def timm_heads(dim: int) -> int:
    """timm ViT heads of a width (head size 64; ViT-H/14: 16 heads of 80)."""
    return 16 if dim == 1280 else max(dim // 64, 1)


def timm_vit_config(
    state: Mapping[str, torch.Tensor],
    family: str,
    n_bins: int,
    time_first: bool,
    where: str,
    **fields: Any,
) -> ViTConfig:
    """The :class:`ViTConfig` of ``family`` (``"audiomae"``, ``"m2d"``) for a timm ViT state dict
    over ``n_bins`` bins: sizes from its patch kernel, position table and blocks; ``fields``
    override the rest (:func:`~echoic.encoders.mae_family.mae_family_config`)."""
    kernel = state["patch_embed.proj.weight"]
    dim, first, second = int(kernel.shape[0]), int(kernel.shape[2]), int(kernel.shape[3])
    patch_t, patch_f = (first, second) if time_first else (second, first)
    n_freq = n_bins // patch_f
    rows = int(state["pos_embed"].shape[1]) - 1
    if n_freq < 1 or rows % n_freq:
        name = {"audiomae": "AudioMAE", "m2d": "M2D"}.get(family, family)
        raise ConversionError(
            f"{where}: pos_embed has {rows} patch rows, which {n_freq} frequency patches of "
            f"{patch_f} bins (of {n_bins}) do not divide; not an {name} audio model."
        )
    return mae_family_config(
        family,
        dim,
        block_depth(state),
        timm_heads(dim),
        patch=(patch_f, patch_t),
        position_grid=(n_freq, rows // n_freq),
        mlp_ratio=state["blocks.0.mlp.fc1.weight"].shape[0] / dim,
        qkv_bias="blocks.0.attn.qkv.bias" in state,
        **fields,
    )


def map_timm_vit(
    state: dict[str, torch.Tensor], config: ViTConfig, time_first: bool, dropped: str, where: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Echoic ViT weights from a timm ViT state dict (``pos_embed``'s CLS row folded into
    ``cls_token``), and the names dropped: those matching the regular expression ``dropped``."""
    src = StateReader(state, where)
    table = src.take("pos_embed")[0]
    out = {
        "patch_embed.proj.weight": patch_projection(
            src.take("patch_embed.proj.weight"), time_first, where
        ),
        "patch_embed.proj.bias": src.take("patch_embed.proj.bias"),
        "positions.table": grid_table(table[1:], config.layout().freq_tokens, time_first, where),
        "cls_token": src.take("cls_token") + table[:1],
        "norm.weight": src.take("norm.weight"),
        "norm.bias": src.take("norm.bias"),
        **map_blocks(src, config.depth, config.qkv_bias),
    }
    src.drop(dropped)
    src.finish()
    return out, src.dropped
