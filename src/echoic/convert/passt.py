"""PaSST checkpoints → the ``passt`` ViT on the ``passt_mel`` frontend (format ``passt``).

PaSST's releases (github.com/kkoutini/PaSST, ``passt-s-f128-p16-s10-ap.476-swa.pt`` …, which
hear21passt downloads) are ``torch.save`` of the model's state dict (a ``{"model": …}`` wrapper,
an ``nn.DataParallel`` ``module.`` prefix and hear21passt's ``PasstBasicWrapper`` — ``net.`` +
``device_proxy`` — are read too). Mapping onto :class:`~echoic.encoders.vit.ViTEncoder`
(``encoders/passt.py``):

- ``patch_embed.proj`` (``Conv2d(1, D, 16, stride)``; older files: the flattened weight) →
  ``patch_embed.proj`` ``(D, 256)``;
- ``freq_new_pos_embed`` ``(1, D, F, 1)`` / ``time_new_pos_embed`` ``(1, D, 1, T)`` →
  ``positions.freq`` ``(F, D)`` / ``positions.time`` ``(T, D)``;
- ``cls_token`` / ``dist_token`` + their rows of ``new_pos_embed`` ``(1, 1 | 2, D)`` →
  ``cls_token`` / ``dist_token`` (what the model adds to them at every forward);
- ``blocks.{i}.*`` and ``norm`` → the same names (timm's ViT block);
- ``head`` (LayerNorm + Linear), ``head_dist``, ``pre_logits`` and ``device_proxy`` are dropped.

What the file does not say, read the way PaSST's ``get_model`` builds it: 128 mel bins; the patch
stride (the same on both axes) is the one whose grid gives the frequency table's rows (12 rows:
10, 8 rows: 16); ``dim / 64`` heads (timm DeiT, every published size). The STFT hop is 320
samples (10 ms at 32 kHz) except for the ``stfthop100`` / ``stfthop160`` releases, recognised by
their file names.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from echoic.checkpoint import ModelConfig
from echoic.config import to_dict
from echoic.convert.base import (
    CheckpointFileConverter,
    ConversionError,
    StateReader,
    model_state,
    provenance,
    read_weights,
    write_model,
)
from echoic.convert.hf_ast import embed_defaults
from echoic.convert.pickle_scan import holds_suffixes
from echoic.convert.registry import register
from echoic.encoders.passt import passt_config
from echoic.encoders.vit import ViTConfig
from echoic.features.passt_mel import PasstMelConfig

__all__ = ["PaSST", "encoder_fields", "frontend_fields", "map_weights"]

MARKERS = ("time_new_pos_embed", "freq_new_pos_embed", "new_pos_embed", "patch_embed.proj.weight")
"""Names every PaSST checkpoint's pickle holds (possibly behind a ``net.`` / ``module.``)."""
DROPPED = r"(head|head_dist|pre_logits)\..*|device_proxy"
N_BINS = 128
HEAD_DIM = 64
STRIDES = (10, 16, *range(1, 17))
"""Strides tried in order: the published ones first."""
HOPS = {"stfthop100": 100, "stfthop160": 160}
"""File-name marks of the releases trained with another STFT hop (samples at 32 kHz)."""


def unwrap(dump: Any, where: str) -> dict[str, torch.Tensor]:
    """The PaSST state dict inside a loaded checkpoint (``{"model": …}``, ``module.``, ``net.``)."""
    state = model_state(dump, where)
    if "device_proxy" in state and all(k.startswith("net.") for k in state if k != "device_proxy"):
        state = {k.removeprefix("net."): v for k, v in state.items()}
    return state


def encoder_fields(state: Mapping[str, torch.Tensor], where: str) -> ViTConfig:
    """The :class:`ViTConfig` of a PaSST state dict."""
    for key in ("patch_embed.proj.weight", "freq_new_pos_embed", "time_new_pos_embed"):
        if key not in state:
            raise ConversionError(f"{where}: no {key}: not a PaSST checkpoint.")
    dim = int(state["freq_new_pos_embed"].shape[1])
    patch_weight = state["patch_embed.proj.weight"]
    if patch_weight.ndim == 4:
        patch = (int(patch_weight.shape[2]), int(patch_weight.shape[3]))
    else:  # flattened by the earliest releases: square patches
        side = round((patch_weight.numel() // dim) ** 0.5)
        patch = (side, side)
    n_freq = int(state["freq_new_pos_embed"].shape[2])
    n_time = int(state["time_new_pos_embed"].shape[3])
    stride = next(
        (s for s in STRIDES if (N_BINS - patch[0]) // s + 1 == n_freq == N_BINS // s), None
    )
    if stride is None or stride > min(patch):
        raise ConversionError(
            f"{where}: a frequency table of {n_freq} rows fits no patch stride over {N_BINS} bins "
            f"with {patch} patches; this PaSST variant is not supported."
        )
    depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    if dim % HEAD_DIM or depth < 1:
        raise ConversionError(f"{where}: width {dim} / {depth} blocks is not a timm ViT layout.")
    return passt_config(
        dim,
        depth,
        dim // HEAD_DIM,
        position_grid=(n_freq, n_time),
        patch=patch,
        patch_stride=(stride, stride),
        mlp_ratio=state["blocks.0.mlp.fc1.weight"].shape[0] / dim,
        qkv_bias="blocks.0.attn.qkv.bias" in state,
        dist_token="dist_token" in state,
    )


def frontend_fields(file: Path) -> dict[str, Any]:
    """The ``passt_mel`` config of a checkpoint: the defaults, with the hop its name gives."""
    name = file.name.lower()
    hop = next((h for mark, h in HOPS.items() if mark in name), PasstMelConfig.hop_length)
    return {"hop_length": hop}


def map_weights(
    state: dict[str, torch.Tensor], config: ViTConfig, where: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Echoic ViT weights from a PaSST state dict; returns them and the dropped names."""
    src = StateReader(state, where)
    dim = config.dim
    prefix = src.take("new_pos_embed")[0]  # (1 | 2, D)
    n_prefix = 1 + int(config.dist_token)
    if prefix.shape != (n_prefix, dim):
        raise ConversionError(
            f"{where}: new_pos_embed of shape {tuple(prefix.shape)}; expected ({n_prefix}, {dim})."
        )
    out = {
        "patch_embed.proj.weight": src.take("patch_embed.proj.weight").reshape(dim, -1),
        "patch_embed.proj.bias": src.take("patch_embed.proj.bias"),
        "cls_token": src.take("cls_token") + prefix[0],
        "positions.freq": src.take("freq_new_pos_embed")[0, :, :, 0].T,
        "positions.time": src.take("time_new_pos_embed")[0, :, 0].T,
        "norm.weight": src.take("norm.weight"),
        "norm.bias": src.take("norm.bias"),
    }
    if config.dist_token:
        out["dist_token"] = src.take("dist_token") + prefix[1]
    parts = ["norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"]
    for i in range(config.depth):
        for part in parts:
            for p in ("weight", "bias"):
                if part != "attn.qkv" or p == "weight" or config.qkv_bias:
                    out[f"blocks.{i}.{part}.{p}"] = src.take(f"blocks.{i}.{part}.{p}")
    src.drop(DROPPED)
    src.finish()
    return out, src.dropped


@register
class PaSST(CheckpointFileConverter):
    """PaSST ``.pt`` checkpoints (the model's state dict) → the ``passt`` ViT on ``passt_mel``."""

    name = "passt"
    description = "PaSST checkpoint (.pt state dict with freq/time_new_pos_embed)"
    reference = "hear21passt 0.0.26 (PaSST + AugmentMelSTFT)"
    file_kind = "PaSST checkpoint file (.pt)"

    def recognises(self, file: Path, names: set[str]) -> bool:
        return holds_suffixes(names, MARKERS)

    def convert(self, path: Path, out_dir: Path, trust_pickle: bool = False) -> Path:
        file = self.checkpoint(path)
        state = unwrap(read_weights(file, trust_pickle), str(file))
        encoder = encoder_fields(state, str(file))
        weights, dropped = map_weights(state, encoder, str(file))
        frontend = frontend_fields(file)
        hop_s = frontend["hop_length"] / PasstMelConfig.sample_rate
        groups = sorted({name.split(".")[0] for name in dropped})
        model = ModelConfig(
            encoder="passt",
            encoder_config=to_dict(encoder),
            frontend="passt_mel",
            frontend_config=frontend,
            name=file.stem,
            licence="apache-2.0",
            provenance=provenance(self, file, [file], "apache-2.0", dropped=groups),
            embed=embed_defaults(encoder, hop_s),
        )
        return write_model(model, weights, out_dir)
