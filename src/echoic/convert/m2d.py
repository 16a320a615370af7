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
from echoic.convert.audiomae import UNVERIFIED, timm_heads
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
from echoic.convert.hf_ast import embed_defaults
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
    dump: Any = read_weights(file, trust_pickle)
    inner = dump["model"] if isinstance(dump, Mapping) and "model" in dump else dump
    state = strip_data_parallel(tensor_dict(inner, str(file)))
    for prefix in PREFIXES:
        if any(k.startswith(prefix + "blocks.") for k in state):
            state = {k.removeprefix(prefix): v for k, v in state.items()}
    return state


def encoder_fields(state: Mapping[str, torch.Tensor], where: str) -> ViTConfig:
    """The :class:`ViTConfig` of an M2D backbone state dict."""
    kernel = state["patch_embed.proj.weight"]
    dim, patch_f, patch_t = int(kernel.shape[0]), int(kernel.shape[2]), int(kernel.shape[3])
    n_freq = N_MELS // patch_f
    rows = int(state["pos_embed"].shape[1]) - 1
    if n_freq < 1 or rows % n_freq:
        raise ConversionError(
            f"{where}: pos_embed has {rows} patch rows, which {n_freq} frequency patches of "
            f"{patch_f} bins (of {N_MELS}) do not divide; not an M2D audio model."
        )
    return mae_family_config(
        "m2d",
        dim,
        block_depth(state),
        timm_heads(dim),
        patch=(patch_f, patch_t),
        position_grid=(n_freq, rows // n_freq),
        mlp_ratio=state["blocks.0.mlp.fc1.weight"].shape[0] / dim,
        qkv_bias="blocks.0.attn.qkv.bias" in state,
    )


def map_weights(
    state: dict[str, torch.Tensor], config: ViTConfig, where: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Echoic ViT weights from an M2D backbone state dict, and the names dropped."""
    src = StateReader(state, where)
    table = src.take("pos_embed")[0]
    out = {
        "patch_embed.proj.weight": patch_projection(
            src.take("patch_embed.proj.weight"), False, where
        ),
        "patch_embed.proj.bias": src.take("patch_embed.proj.bias"),
        "positions.table": grid_table(table[1:], config.layout().freq_tokens, False, where),
        "cls_token": src.take("cls_token") + table[:1],
        "norm.weight": src.take("norm.weight"),
        "norm.bias": src.take("norm.bias"),
        **map_blocks(src, config.depth, config.qkv_bias),
    }
    src.drop(DROPPED)
    src.finish()
    return out, src.dropped


@register
class M2D(Converter):
    """M2D ``.pth`` checkpoints → the ``m2d`` ViT on ``centred_mel`` (M2D's log-mel)."""

    name = "m2d"
    description = (
        "M2D checkpoint (.pth in its m2d_… release folder: timm ViT state dict + norm_stats)"
    )
    reference = "no PyPI reference: nttcslab/m2d's key layout (parity unverified)"

    def detect(self, path: Path) -> bool:
        file = checkpoint_file(path)
        if file is None:
            return False
        names = pickled_names(file)
        return is_timm_vit(names) and is_m2d(file, names)

    def source_files(self, path: Path) -> list[Path]:
        file = checkpoint_file(path)
        return [file] if file is not None else []

    def convert(self, path: Path, out_dir: Path, trust_pickle: bool = False) -> Path:
        file = checkpoint_file(path)
        if file is None:
            raise ConversionError(f"{path}: no M2D checkpoint file (.pth) found.")
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
