"""AudioMAE checkpoints → the ``audiomae`` ViT on AST's Kaldi fbank (format ``audiomae``).

facebookresearch/AudioMAE saves ``{"model": state dict, "optimizer", "epoch", "scaler", "args"}``
(MAE's ``misc.save_model``; the published ``pretrained.pth``); a bare state dict is read too. The
model is timm's ``VisionTransformer`` with the MAE decoder beside it (``models_mae.py``), fed the
AST fbank as an image of ``(time 1024, freq 128)``. Mapping (:mod:`echoic.convert.mae_vit`):

- ``patch_embed.proj`` ``(D, 1, 16 t, 16 f)`` → ``patch_embed.proj`` (kernel transposed to echoic's
  ``(freq, time)`` pixels; a ``Conv2d`` without padding: ``patch_stride`` = patch);
- ``pos_embed`` ``(1, 1 + 64·8, D)``: row 0 is the CLS token's (folded into ``cls_token``), the
  others the time-major 64 × 8 sin-cos grid → ``positions.table`` ``(8, 64, D)``;
- ``blocks.{i}.*`` → ``blocks.{i}.*`` (same names), ``norm`` → ``norm``;
- dropped: the decoder (``decoder_*``), ``mask_token``, a ``head``.

Not read: fine-tuned checkpoints with global pooling (``fc_norm`` replaces ``norm`` and acts after
pooling) — refused with that reason. No PyPI package runs AudioMAE, so parity against the original
is unverified; ``tests/convert/test_convert_mae_family.py`` checks the mapping by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from echoic.checkpoint import ModelConfig
from echoic.config import to_dict
from echoic.convert.base import (
    ConversionError,
    Converter,
    StateReader,
    provenance,
    read_weights,
    strip_data_parallel,
    tensor_dict,
    write_model,
)
from echoic.convert.hf_ast import ast_frontend, embed_defaults
from echoic.convert.mae_vit import (
    block_depth,
    grid_table,
    is_m2d,
    is_timm_vit,
    map_blocks,
    patch_projection,
)
from echoic.convert.pickle_scan import checkpoint_file, pickled_names
from echoic.convert.registry import register
from echoic.encoders.mae_family import mae_family_config
from echoic.encoders.vit import ViTConfig

__all__ = ["AudioMAE", "timm_heads"]

N_BINS = 128
DROPPED = r"decoder_.*|mask_token|head\..*"
LICENCE = "CC-BY-NC-4.0 (non-commercial; the repository's LICENSE file)"
UNVERIFIED = "unverified against the original code (no PyPI reference); self-consistency tested"


def timm_heads(dim: int) -> int:
    """timm ViT heads of a width (head size 64; ViT-H/14: 16 heads of 80)."""
    return 16 if dim == 1280 else max(dim // 64, 1)


def encoder_fields(state: Mapping[str, torch.Tensor], where: str) -> ViTConfig:
    """The :class:`ViTConfig` of an AudioMAE encoder state dict."""
    kernel = state["patch_embed.proj.weight"]
    dim, patch_t, patch_f = int(kernel.shape[0]), int(kernel.shape[2]), int(kernel.shape[3])
    rows = int(state["pos_embed"].shape[1]) - 1
    n_freq = N_BINS // patch_f
    if rows % n_freq:
        raise ConversionError(
            f"{where}: pos_embed has {rows} patch rows, which {n_freq} frequency patches of "
            f"{patch_f} bins (of {N_BINS}) do not divide; not an AudioMAE audio model."
        )
    return mae_family_config(
        "audiomae",
        dim,
        block_depth(state),
        timm_heads(dim),
        patch=(patch_f, patch_t),
        patch_stride=(patch_f, patch_t),
        position_grid=(n_freq, rows // n_freq),
        mlp_ratio=state["blocks.0.mlp.fc1.weight"].shape[0] / dim,
        qkv_bias="blocks.0.attn.qkv.bias" in state,
    )


def map_weights(
    state: dict[str, torch.Tensor], config: ViTConfig, where: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Echoic ViT weights from an AudioMAE state dict, and the names dropped."""
    src = StateReader(state, where)
    table = src.take("pos_embed")[0]
    n_freq = config.layout().freq_tokens
    out = {
        "patch_embed.proj.weight": patch_projection(
            src.take("patch_embed.proj.weight"), True, where
        ),
        "patch_embed.proj.bias": src.take("patch_embed.proj.bias"),
        "positions.table": grid_table(table[1:], n_freq, True, where),
        "cls_token": src.take("cls_token") + table[:1],
        "norm.weight": src.take("norm.weight"),
        "norm.bias": src.take("norm.bias"),
        **map_blocks(src, config.depth, config.qkv_bias),
    }
    src.drop(DROPPED)
    src.finish()
    return out, src.dropped


def read_state(file: Path, trust_pickle: bool) -> dict[str, torch.Tensor]:
    """The encoder state dict of a ``{"model": …}`` checkpoint or a bare state dict."""
    dump: Any = read_weights(file, trust_pickle)
    inner = dump["model"] if isinstance(dump, Mapping) and "model" in dump else dump
    return strip_data_parallel(tensor_dict(inner, str(file)))


@register
class AudioMAE(Converter):
    """AudioMAE ``.pth`` checkpoints → the ``audiomae`` ViT on ``kaldi_fbank`` (AST's preset)."""

    name = "audiomae"
    description = (
        "AudioMAE checkpoint (.pth: {'model': timm ViT state dict}, as its repository saves)"
    )
    reference = "no PyPI reference: facebookresearch/AudioMAE's key layout (parity unverified)"

    def detect(self, path: Path) -> bool:
        file = checkpoint_file(path)
        if file is None:
            return False
        names = pickled_names(file)
        return is_timm_vit(names) and not is_m2d(file, names)

    def source_files(self, path: Path) -> list[Path]:
        file = checkpoint_file(path)
        return [file] if file is not None else []

    def convert(self, path: Path, out_dir: Path, trust_pickle: bool = False) -> Path:
        file = checkpoint_file(path)
        if file is None:
            raise ConversionError(f"{path}: no AudioMAE checkpoint file (.pth) found.")
        state = read_state(file, trust_pickle)
        if "fc_norm.weight" in state and "norm.weight" not in state:
            raise ConversionError(
                f"{file}: a fine-tuned AudioMAE with global pooling (fc_norm after mean pooling, "
                "no final norm): not supported yet; convert the pretrained checkpoint."
            )
        encoder = encoder_fields(state, str(file))
        weights, dropped = map_weights(state, encoder, str(file))
        model = ModelConfig(
            encoder="audiomae",
            encoder_config=to_dict(encoder),
            frontend="kaldi_fbank",
            frontend_config=ast_frontend(N_BINS),
            name=file.stem,
            licence=LICENCE,
            provenance=provenance(
                self, file, [file], LICENCE, dropped=sorted(dropped), parity=UNVERIFIED
            ),
            embed=embed_defaults(encoder),
        )
        return write_model(model, weights, out_dir)
