"""ATST-Frame checkpoints → the ``atst_frame`` ViT on the ``centred_mel`` frontend (format
``atst-frame``).

The published ATST-Frame files (``atst_frame_small.ckpt`` / ``atst_frame_base.ckpt``, audiossl's
releases) are PyTorch-Lightning archives of ``FrameATSTLightningModule``: ``state_dict`` holds the
student and the teacher (``model.{student,teacher}.encoder.*``, their projectors, the student's
predictor) and ``hyper_parameters`` the ``arch`` / ``pos_type`` / ``nprompt`` used. The teacher's
encoder is what every downstream user loads; the student, projectors and predictor are dropped.
A bare encoder state dict (``FrameAST.state_dict()``, as ATST-SED and avex's ``load_model`` read
it) is read too. Mapping onto :class:`~echoic.encoders.vit.ViTEncoder` (``encoders/atst_frame.py``):

- ``patch_embed.patch_embed`` (``PatchEmbed_v2``: ``Linear(64 · 4, D)`` over patches flattened
  frequency-major, echoic's order) → ``patch_embed.proj``; the ``"CNN"`` variant's
  ``patch_embed.proj`` (``Conv2d(1, D, (64, 4), stride (64, 4))``) → the same, reshaped;
- ``pos_embed`` ``(1, 1 + T, D)``: rows 1… → ``positions.table`` ``(1, T, D)``; row 0 (a CLS
  position the frame model never adds) is not used;
- ``blocks.{i}.*`` → the same names (no qkv bias); ``norm_frame`` → ``norm``;
- ``mask_embed`` (pretraining) is dropped.

Heads are not stored: ``dim / 64`` (FrameAST_small 384 → 6, _base 768 → 12, _large 1024 → 16).
Refused: ``pos_type`` other than ``"cut"`` (an SSAST-style interpolated table), prompts
(``nprompt > 0``).
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
    provenance,
    read_weights,
    strip_data_parallel,
    tensor_dict,
    write_model,
)
from echoic.convert.hf_ast import embed_defaults
from echoic.convert.pickle_scan import holds_suffixes
from echoic.convert.registry import register
from echoic.encoders.atst_frame import atst_frame_config
from echoic.encoders.vit import ViTConfig

__all__ = ["ATST_FRONTEND", "ATSTFrame", "encoder_fields", "map_weights", "teacher_state"]

TEACHER = "model.teacher.encoder."
MARKERS = ("norm_frame.weight", "pos_embed", "mask_embed")
"""Names every ATST-Frame checkpoint's pickle holds (behind ``model.teacher.encoder.`` in the
Lightning archives)."""
PATCH = (64, 4)
HEAD_DIM = 64
LIGHTNING_DROPPED = r"model\.(student\..*|teacher\.(projector|predictor)\..*)"
ATST_MIN_DB, ATST_MAX_DB = -79.6482, 50.6842
"""ATST's ``MinMax`` bounds: ``(x - min) / (max - min) * 2 - 1`` = ``(x - mean) / std``."""
ATST_FRONTEND: dict[str, Any] = {
    "n_fft": 1024,
    "hop_length": 160,
    "n_mels": 64,
    "f_min": 60.0,
    "f_max": 7800.0,
    "top_db": 80.0,
    "mean": (ATST_MAX_DB + ATST_MIN_DB) / 2,
    "std": (ATST_MAX_DB - ATST_MIN_DB) / 2,
}
"""The ``centred_mel`` config of ATST's features (``MelSpectrogram`` → ``AmplitudeToDB`` →
``MinMax``)."""


def teacher_state(
    dump: Any, where: str
) -> tuple[dict[str, torch.Tensor], list[str], dict[str, Any]]:
    """``(encoder state, dropped names, hyper-parameters)`` of a loaded ATST-Frame checkpoint:
    the teacher encoder of a Lightning archive, or a bare encoder state dict."""
    hyper: dict[str, Any] = {}
    if isinstance(dump, Mapping) and isinstance(dump.get("state_dict"), Mapping):
        raw = dump.get("hyper_parameters")
        hyper = dict(raw) if isinstance(raw, Mapping) else {}
        state = tensor_dict(dump["state_dict"], where)
        if not any(k.startswith(TEACHER) for k in state):
            raise ConversionError(
                f"{where}: a Lightning checkpoint without {TEACHER}* weights: not ATST-Frame."
            )
        reader = StateReader(state, where)
        reader.drop(LIGHTNING_DROPPED)
        encoder = {k[len(TEACHER) :]: v for k, v in state.items() if k.startswith(TEACHER)}
        for key in encoder:
            reader.take(TEACHER + key)
        reader.finish()
        groups = sorted({".".join(k.split(".")[:3]) for k in reader.dropped})
        return encoder, groups, hyper
    return strip_data_parallel(tensor_dict(dump, where)), [], hyper


def encoder_fields(
    state: Mapping[str, torch.Tensor], hyper: Mapping[str, Any], where: str
) -> ViTConfig:
    """The :class:`ViTConfig` of an ATST-Frame encoder state dict."""
    refused = {
        "pos_type": hyper.get("pos_type", "cut") != "cut",
        "nprompt": int(hyper.get("nprompt", 0) or 0) > 0 or "prompt_embed" in state,
    }
    bad = [key for key, wrong in refused.items() if wrong]
    if bad:
        raise ConversionError(
            f"{where}: {', '.join(f'{k}={hyper.get(k)!r}' for k in bad)}: echoic reads ATST-Frame "
            "with a cut position table (pos_type 'cut') and no prompt tokens, as released."
        )
    if "pos_embed" not in state or "norm_frame.weight" not in state:
        raise ConversionError(f"{where}: no pos_embed / norm_frame: not an ATST-Frame encoder.")
    dim = int(state["pos_embed"].shape[-1])
    depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    if dim % HEAD_DIM or depth < 1:
        raise ConversionError(f"{where}: width {dim} / {depth} blocks is not an ATST layout.")
    return atst_frame_config(
        dim,
        depth,
        dim // HEAD_DIM,
        position_grid=(1, int(state["pos_embed"].shape[1]) - 1),
        mlp_ratio=state["blocks.0.mlp.fc1.weight"].shape[0] / dim,
        qkv_bias="blocks.0.attn.qkv.bias" in state,
    )


def map_weights(
    state: dict[str, torch.Tensor], config: ViTConfig, where: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Echoic ViT weights from an ATST-Frame encoder state dict; returns them and the dropped
    names."""
    src = StateReader(state, where)
    dim = config.dim
    linear = "patch_embed.patch_embed.weight" in src
    stem = "patch_embed.patch_embed" if linear else "patch_embed.proj"
    weight = src.take(f"{stem}.weight")
    if weight.numel() != dim * PATCH[0] * PATCH[1]:
        raise ConversionError(
            f"{where}: {stem}.weight of shape {tuple(weight.shape)}; ATST's patches are "
            f"{PATCH[0]} × {PATCH[1]} (64 mel bins × 4 frames)."
        )
    out = {
        "patch_embed.proj.weight": weight.reshape(dim, -1),
        "patch_embed.proj.bias": src.take(f"{stem}.bias"),
        "positions.table": src.take("pos_embed")[0, 1:][None],
        "norm.weight": src.take("norm_frame.weight"),
        "norm.bias": src.take("norm_frame.bias"),
    }
    parts = ["norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"]
    for i in range(config.depth):
        for part in parts:
            for p in ("weight", "bias"):
                if part != "attn.qkv" or p == "weight" or config.qkv_bias:
                    out[f"blocks.{i}.{part}.{p}"] = src.take(f"blocks.{i}.{part}.{p}")
    src.drop("mask_embed")
    src.finish()
    return out, src.dropped


@register
class ATSTFrame(CheckpointFileConverter):
    """ATST-Frame ``.ckpt`` (Lightning archives; bare encoder state dicts too) → the
    ``atst_frame`` ViT on ``centred_mel``."""

    name = "atst-frame"
    description = "ATST-Frame checkpoint (.ckpt Lightning archive or FrameAST state dict)"
    reference = "avex 1.4.0 (avex.models.atst_frame: FrameAST, load_model's frontend)"
    file_kind = "ATST-Frame checkpoint file (.ckpt)"

    def recognises(self, file: Path, names: set[str]) -> bool:
        return holds_suffixes(names, MARKERS)

    def convert(self, path: Path, out_dir: Path, trust_pickle: bool = False) -> Path:
        file = self.checkpoint(path)
        state, dropped_parts, hyper = teacher_state(read_weights(file, trust_pickle), str(file))
        encoder = encoder_fields(state, hyper, str(file))
        weights, dropped = map_weights(state, encoder, str(file))
        frontend = dict(ATST_FRONTEND)
        model = ModelConfig(
            encoder="atst_frame",
            encoder_config=to_dict(encoder),
            frontend="centred_mel",
            frontend_config=frontend,
            name=file.stem,
            licence="unknown",
            provenance=provenance(
                self,
                file,
                [file],
                "unknown",
                dropped=sorted(dropped_parts + dropped),
                hyper_parameters=sorted(str(k) for k in hyper),
            ),
            embed=embed_defaults(encoder, frontend["hop_length"] / 16000),
        )
        return write_model(model, weights, out_dir)
