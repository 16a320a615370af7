"""Checkpoints of the original AST and SSAST code → the ``ast`` / ``ssast`` ViT (format ``ast-pth``).

The AST (github.com/YuanGongND/ast) and SSAST (…/ssast) repositories save ``torch.save`` of an
``nn.DataParallel(ASTModel)`` state dict: every key starts with ``module.``, the timm DeiT lives
under ``module.v.`` (``cls_token``, ``dist_token``, ``pos_embed``, ``patch_embed.proj``,
``blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``, ``norm``, the DeiT heads
``head`` / ``head_dist``), next to the task head ``module.mlp_head`` (fine-tuned models) or the
pretraining leftovers ``module.{cpredlayer,gpredlayer,mask_embed}`` and the pretraining input size
``module.p_input_fdim`` / ``p_input_tdim`` (SSAST). Heads and leftovers are dropped.

The patch geometry is not all in the file; echoic reads it the way the repositories' code does:

- **SSAST pretrained** (``p_input_tdim`` present): patches of the projection's shape, pretrained
  without overlap, so the table is ``((F - pf) // pf + 1, (T - pt) // pt + 1)`` of the stored
  input size. Downstream (SSAST's fine-tuning recipes, s3prl's ``ssast_*`` upstreams) the code
  switches to overlapping strides — ``(10, 10)`` for 16 × 16 patches, ``(pf, 1)`` for full-band
  frame patches — and fits the table to the grid by centring / interpolating (``position_fit
  "centre"``); echoic converts to exactly that model.
- **AST / fine-tuned SSAST** (no ``p_input_*``): 128 bins and strides ``(10, 10)`` (every
  published AST model), the table's time length from ``pos_embed``; a stride of the patch size is
  taken instead when 10 does not fit the table. Shorter input takes the table's centred columns,
  as the AST code does when a model is built for it (``position_fit "centre"``).

Heads: timm DeiT uses ``dim / 64`` heads at every published size (tiny 3, small 6, base 12);
LayerNorm eps 1e-6 (timm). Frontend: 128-bin Kaldi fbank, ``(x + 4.2677393) / (2 · 4.5689974)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from echoic.checkpoint import ModelConfig
from echoic.config import to_dict
from echoic.convert.base import (
    CheckpointFileConverter,
    ConversionError,
    StateReader,
    provenance,
    read_weights,
    strip_data_parallel,
    tensor_dict,
    write_model,
)
from echoic.convert.hf_ast import ast_frontend, embed_defaults, map_prefix_and_table
from echoic.convert.registry import register
from echoic.encoders.ast import ast_config
from echoic.encoders.vit import ViTConfig

__all__ = ["ASTCheckpoint", "encoder_fields", "map_weights"]

MARKERS = {"module.v.pos_embed", "module.v.patch_embed.proj.weight", "module.v.cls_token"}
"""Names every AST / SSAST checkpoint's pickle holds."""
LEFTOVERS = r"(v\.head|v\.head_dist|mlp_head|cpredlayer|gpredlayer|mask_embed|p_input_fdim|p_input_tdim)(\..*)?"
N_BINS = 128
HEAD_DIM = 64


def encoder_fields(state: dict[str, torch.Tensor], where: str) -> tuple[str, ViTConfig]:
    """``(family, config)`` of an AST / SSAST state dict (``module.`` already stripped)."""
    if "v.patch_embed.proj.weight" not in state or "v.pos_embed" not in state:
        raise ConversionError(f"{where}: no v.patch_embed.proj.weight / v.pos_embed: not AST.")
    dim, _, patch_f, patch_t = state["v.patch_embed.proj.weight"].shape
    n_prefix = 2 if "v.dist_token" in state else 1
    n_table = int(state["v.pos_embed"].shape[1]) - n_prefix
    depth = len({k.split(".")[2] for k in state if k.startswith("v.blocks.")})
    fields: dict[str, Any] = {
        "patch": (patch_f, patch_t),
        "n_bins": N_BINS,
        "dist_token": n_prefix == 2,
        "norm_eps": 1e-6,
        "position_fit": "centre",
        "mlp_ratio": state["v.blocks.0.mlp.fc1.weight"].shape[0] / dim,
        "qkv_bias": "v.blocks.0.attn.qkv.bias" in state,
    }
    if "p_input_tdim" in state:  # SSAST pretrained: non-overlapping table, strided downstream
        n_bins, frames = int(state["p_input_fdim"]), int(state["p_input_tdim"])
        grid = ((n_bins - patch_f) // patch_f + 1, (frames - patch_t) // patch_t + 1)
        full_band = patch_f == n_bins
        stride = (patch_f, 1) if full_band else (10, 10) if (patch_f, patch_t) == (16, 16) else None
        family = "ssast"
        fields.update(n_bins=n_bins, patch_stride=stride or (patch_f, patch_t))
    else:
        family, grid = "ast", (0, 0)
        for stride in ((10, 10), (patch_f, patch_t)):
            n_freq = (N_BINS - patch_f) // stride[0] + 1
            if n_table % n_freq == 0:
                grid = (n_freq, n_table // n_freq)
                fields["patch_stride"] = stride
                break
        else:
            raise ConversionError(
                f"{where}: a position table of {n_table} patches fits no 128-bin grid with strides "
                f"10 or {patch_f}; not a layout this converter knows."
            )
    if grid[0] * grid[1] != n_table:
        raise ConversionError(
            f"{where}: the pretraining input ({grid[0]} × {grid[1]} patches) does not match the "
            f"position table's {n_table} rows."
        )
    return family, ast_config(int(dim), depth, int(dim) // HEAD_DIM, position_grid=grid, **fields)


def map_weights(
    state: dict[str, torch.Tensor], config: ViTConfig, where: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Echoic ViT weights from an AST / SSAST state dict (``module.`` stripped)."""
    src = StateReader(state, where)
    out = map_prefix_and_table(
        src,
        config,
        {
            "positions": "v.pos_embed",
            "proj.weight": "v.patch_embed.proj.weight",
            "proj.bias": "v.patch_embed.proj.bias",
            "cls": "v.cls_token",
            "dist": "v.dist_token",
        },
    )
    for i in range(config.depth):
        for part in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"):
            for p in ("weight", "bias"):
                if part != "attn.qkv" or p == "weight" or config.qkv_bias:
                    out[f"blocks.{i}.{part}.{p}"] = src.take(f"v.blocks.{i}.{part}.{p}")
    for p in ("weight", "bias"):
        out[f"norm.{p}"] = src.take(f"v.norm.{p}")
    src.drop(LEFTOVERS)
    src.finish()
    return out, src.dropped


@register
class ASTCheckpoint(CheckpointFileConverter):
    """``.pth`` state dicts of the AST and SSAST repositories → the ``ast`` / ``ssast`` ViT on
    the ``kaldi_fbank`` frontend (AST's normalisation)."""

    name = "ast-pth"
    description = (
        "AST / SSAST repository checkpoint (.pth: nn.DataParallel state dict, module.v.pos_embed, "
        "module.v.blocks.*)"
    )
    reference = "s3prl 0.4.18 (upstream/ssast, upstream/ast: the AST / SSAST code) + timm 0.4.5"
    file_kind = "AST / SSAST checkpoint file (.pth)"

    def recognises(self, file: Path, names: set[str]) -> bool:
        return MARKERS <= names

    def convert(self, path: Path, out_dir: Path, trust_pickle: bool = False) -> Path:
        file = self.checkpoint(path)
        state = strip_data_parallel(tensor_dict(read_weights(file, trust_pickle), str(file)))
        family, encoder = encoder_fields(state, str(file))
        weights, dropped = map_weights(state, encoder, str(file))
        config = ModelConfig(
            encoder=family,
            encoder_config=to_dict(encoder),
            frontend="kaldi_fbank",
            frontend_config=ast_frontend(encoder.n_bins),
            name=file.stem,
            licence="unknown",
            provenance=provenance(
                self,
                file,
                [file],
                "unknown",
                dropped=sorted(dropped),
                layout=(
                    "SSAST pretrained (strided as its downstream code)"
                    if family == "ssast"
                    else "AST / fine-tuned (strides 10)"
                ),
            ),
            embed=embed_defaults(encoder),
        )
        return write_model(config, weights, out_dir)
