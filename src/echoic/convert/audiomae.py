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

import torch

from echoic.checkpoint import ModelConfig
from echoic.config import to_dict
from echoic.convert.base import (
    CheckpointFileConverter,
    ConversionError,
    model_state,
    provenance,
    read_weights,
    write_model,
)
from echoic.convert.hf_ast import ast_frontend, embed_defaults
from echoic.convert.mae_vit import (
    is_m2d,
    is_timm_vit,
    map_timm_vit,
    timm_heads,
    timm_vit_config,
)
from echoic.convert.registry import register
from echoic.encoders.vit import ViTConfig

__all__ = ["AudioMAE", "timm_heads"]

N_BINS = 128
DROPPED = r"decoder_.*|mask_token|head\..*"
LICENCE = "CC-BY-NC-4.0 (non-commercial; the repository's LICENSE file)"
UNVERIFIED = "unverified against the original code (no PyPI reference); self-consistency tested"


def encoder_fields(state: Mapping[str, torch.Tensor], where: str) -> ViTConfig:
    """The :class:`ViTConfig` of an AudioMAE encoder state dict (its image is ``(time, freq)``;
    a ``Conv2d`` without padding: ``patch_stride`` = patch)."""
    kernel = state["patch_embed.proj.weight"]
    patch = (int(kernel.shape[3]), int(kernel.shape[2]))
    return timm_vit_config(state, "audiomae", N_BINS, True, where, patch_stride=patch)


def map_weights(
    state: dict[str, torch.Tensor], config: ViTConfig, where: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Echoic ViT weights from an AudioMAE state dict, and the names dropped."""
    return map_timm_vit(state, config, True, DROPPED, where)


def read_state(file: Path, trust_pickle: bool) -> dict[str, torch.Tensor]:
    """The encoder state dict of a ``{"model": …}`` checkpoint or a bare state dict."""
    return model_state(read_weights(file, trust_pickle), str(file))


@register
class AudioMAE(CheckpointFileConverter):
    """AudioMAE ``.pth`` checkpoints → the ``audiomae`` ViT on ``kaldi_fbank`` (AST's preset)."""

    name = "audiomae"
    description = (
        "AudioMAE checkpoint (.pth: {'model': timm ViT state dict}, as its repository saves)"
    )
    reference = "no PyPI reference: facebookresearch/AudioMAE's key layout (parity unverified)"
    file_kind = "AudioMAE checkpoint file (.pth)"

    def recognises(self, file: Path, names: set[str]) -> bool:
        return is_timm_vit(names) and not is_m2d(file, names)

    def convert(self, path: Path, out_dir: Path, trust_pickle: bool = False) -> Path:
        file = self.checkpoint(path)
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
