"""M2D checkpoints → the ``m2d`` ViT on an 80-bin natural-log mel (format ``m2d``).

nttcslab/m2d's releases are folders named like ``m2d_vit_base-80x608p16x16-221006-mr7`` holding
``checkpoint-300.pth`` (``{"model": state dict, "optimizer", "epoch", "scaler", "args"}``, MAE's
``misc.save_model``) or an encoder-only ``weights_*.pth`` (a bare state dict). The runtime
(``examples/portable_m2d.py``) reads the input size, patch size and sample rate (``p32k``) from the
**folder name**; echoic reads the patch from the kernel, the table from ``pos_embed`` and the rate
from the name (16 kHz without ``p32k``). Mapping (:mod:`echoic.convert.mae_vit`):

- ``patch_embed.proj`` ``(D, 1, 16 f, 16 t)`` (the image is ``(freq 80, time)``) →
  ``patch_embed.proj``; a partial last time patch is zero-filled (the runtime pads to whole patches);
- ``pos_embed`` ``(1, 1 + 5·T, D)``: the CLS row folded into ``cls_token``, the frequency-major
  rest → ``positions.table`` ``(5, T, D)``, cut from its start for a shorter input (the runtime's
  rule);
- ``blocks.{i}.*``, ``norm`` → the same names;
- ``norm_stats`` ``[mean, std]`` → the frontend's ``mean`` / ``std`` (absent in 2022 files: the
  runtime's default ``[-7.1, 4.2]``, recorded in ``provenance.norm_stats``);
- ``backbone.`` (RuntimeM2D) and ``module.ar.runtime.backbone.`` (EVAR fine-tuning) prefixes are
  removed; dropped: the decoder (``decoder_*``), ``mask_token``, the EMA target encoder
  (``target_blocks``, ``target_norm``), ``offline_predictor``, M2D-CLAP's ``audio_proj`` /
  ``text_proj``, EVAR heads.

Features (the runtime's ``nnAudio.features.MelSpectrogram``): centred 400-point STFT every 10 ms
(16 kHz; 800 / 20 ms at 32 kHz), periodic Hann, power, 80 Slaney mel bins 50 Hz – 8 kHz (16 kHz),
``log(x + float32 eps)``, ``(x − mean) / std``: ``centred_mel``. The embedding concatenates a time
step's 5 frequency tokens (``freq_pool="concat"``). No PyPI package runs M2D: parity against the
original is unverified.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from echoic.checkpoint import ModelConfig
from echoic.config import to_dict
from echoic.convert.audiomae import UNVERIFIED
from echoic.convert.base import (
    CheckpointFileConverter,
    model_state,
    provenance,
    read_weights,
    write_model,
)
from echoic.convert.hf_ast import embed_defaults
from echoic.convert.mae_vit import (
    is_m2d,
    is_timm_vit,
    map_timm_vit,
    timm_vit_config,
)
from echoic.convert.registry import register
from echoic.encoders.vit import ViTConfig

__all__ = ["M2D", "m2d_frontend"]

N_MELS = 80
DEFAULT_NORM_STATS = (-7.1, 4.2)
PREFIXES = ("module.ar.runtime.backbone.", "backbone.")
DROPPED = (
    r"decoder_.*|mask_token|target_blocks\..*|target_norm\..*|offline_predictor\..*"
    r"|audio_proj\..*|text_proj\..*|head\..*|module\.head\..*|norm_stats"
)
LICENCE = "NTT software licence for evaluation (non-commercial testing and evaluation only)"
FLOAT32_EPS = float(torch.finfo(torch.float32).eps)


def m2d_frontend(sample_rate: int, mean: float, std: float) -> dict[str, Any]:
    """The ``centred_mel`` config of M2D's runtime features at 16 or 32 kHz."""
    scale = sample_rate // 16000
    return {
        "sample_rate": sample_rate,
        "n_fft": 400 * scale,
        "hop_length": 160 * scale,
        "n_mels": N_MELS,
        "f_min": 50.0,
        "f_max": sample_rate / 2,
        "window": "hann",
        "power": 2.0,
        "mel_scale": "slaney",
        "mel_norm": "slaney",
        "log": "natural",
        "log_offset": FLOAT32_EPS,
        "top_db": None,
        "mean": mean,
        "std": std,
    }


def sample_rate_of(file: Path) -> int:
    """32000 when the release's folder or file name says ``p32k`` (the runtime's rule), else
    16000."""
    return 32000 if re.search(r"p32k", f"{file.parent.name}/{file.stem}") else 16000


def read_state(file: Path, trust_pickle: bool) -> dict[str, torch.Tensor]:
    """The backbone state dict (wrappers and prefixes removed)."""
    state = model_state(read_weights(file, trust_pickle), str(file))
    for prefix in PREFIXES:
        if any(k.startswith(prefix + "blocks.") for k in state):
            state = {k.removeprefix(prefix): v for k, v in state.items()}
    return state


def encoder_fields(state: Mapping[str, torch.Tensor], where: str) -> ViTConfig:
    """The :class:`ViTConfig` of an M2D backbone state dict (its image is ``(freq, time)``)."""
    return timm_vit_config(state, "m2d", N_MELS, False, where)


def map_weights(
    state: dict[str, torch.Tensor], config: ViTConfig, where: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Echoic ViT weights from an M2D backbone state dict, and the names dropped."""
    return map_timm_vit(state, config, False, DROPPED, where)


@register
class M2D(CheckpointFileConverter):
    """M2D ``.pth`` checkpoints → the ``m2d`` ViT on ``centred_mel`` (M2D's log-mel)."""

    name = "m2d"
    description = (
        "M2D checkpoint (.pth in its m2d_… release folder: timm ViT state dict + norm_stats)"
    )
    reference = "no PyPI reference: nttcslab/m2d's key layout (parity unverified)"
    file_kind = "M2D checkpoint file (.pth)"

    def recognises(self, file: Path, names: set[str]) -> bool:
        return is_timm_vit(names) and is_m2d(file, names)

    def convert(self, path: Path, out_dir: Path, trust_pickle: bool = False) -> Path:
        file = self.checkpoint(path)
        state = read_state(file, trust_pickle)
        stats = state.get("norm_stats")
        mean, std = DEFAULT_NORM_STATS if stats is None else (float(stats[0]), float(stats[1]))
        encoder = encoder_fields(state, str(file))
        weights, dropped = map_weights(state, encoder, str(file))
        rate = sample_rate_of(file)
        frontend = m2d_frontend(rate, mean, std)
        model = ModelConfig(
            encoder="m2d",
            encoder_config=to_dict(encoder),
            frontend="centred_mel",
            frontend_config=frontend,
            name=f"{file.parent.name}/{file.stem}",
            licence=LICENCE,
            provenance=provenance(
                self,
                file,
                [file],
                LICENCE,
                dropped=sorted(dropped),
                parity=UNVERIFIED,
                norm_stats="checkpoint" if stats is not None else "absent: the runtime's default",
            ),
            embed={**embed_defaults(encoder, frontend["hop_length"] / rate), "freq_pool": "concat"},
        )
        return write_model(model, weights, out_dir)
