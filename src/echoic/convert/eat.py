"""EAT checkpoints → the ``eat`` ViT on AST's Kaldi fbank (format ``eat``).

EAT (cwx-worst-one/EAT) trains data2vec 2.0's ``Data2VecMultiModel`` in fairseq, so its files are
fairseq checkpoints: ``{"cfg": {...}, "model": state dict, "optimizer_history", "extra_state",
"last_optimizer_state", …}``. Their training state holds ``collections.defaultdict``s, which
PyTorch's restricted unpickler cannot rebuild: they are read as plain dicts (``safe_pickle``'s
stand-in; nothing of the file runs). The model (``models/EAT_pretraining.py``, ``images.py``,
``base.py``, ``modules.py``) on the AST fbank as an image of ``(time 1024, freq 128)``:

- ``modality_encoders.IMAGE.local_encoder.proj`` (timm ``PatchEmbed``, ``(D, 1, 16 t, 16 f)``) →
  ``patch_embed.proj`` (kernel transposed; a ``Conv2d`` without padding);
- ``….fixed_positional_encoder.positions`` ``(1, 64·8, D)`` (fixed sin-cos, time-major rows, no
  CLS row) → ``positions.table`` ``(8, 64, D)``, cut from its start for a shorter input;
- ``….extra_tokens`` ``(1, 1, D)`` → ``cls_token`` (prepended after the positions: none added);
- ``….context_encoder.norm`` (a LayerNorm over every token, the CLS included, before the blocks:
  ``layer_norm_first: false``) → ``norm`` with ``post_norm``;
- ``blocks.{i}`` (``AltBlock``, post-LN: ``x = norm1(x + attn(x))``, ``x = norm2(x + mlp(x))``)
  → ``blocks.{i}`` (:class:`~echoic.layers.PostNormBlock`, same names); a ``layer_norm_first``
  model (pre-LN, final ``norm``) is read as the pre-LN ViT;
- dropped: the CNN decoder (``….decoder``), the EMA teacher (``_ema``), ``recon_proj``,
  ``cls_proj``, ``center``, ``shared_decoder``; a fine-tuned model's ``model.`` prefix is removed
  and its ``fc_norm`` + ``head`` (after pooling) dropped.

Refused: pre-net blocks (``prenet_depth > 0``), ALiBi biases, more than one extra token, a
projected patch embedding. Features (``feature_extract.py``): torchaudio's Kaldi fbank
(``htk_compat``, hanning, 128 bins) of the mean-removed waveform, ``(x + 4.268) / (2 · 4.569)``.
No PyPI package runs EAT (fairseq's pretraining code): parity against it is unverified.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from echoic.checkpoint import ModelConfig
from echoic.config import to_dict
from echoic.convert.audiomae import UNVERIFIED
from echoic.convert.base import (
    CheckpointFileConverter,
    ConversionError,
    StateReader,
    provenance,
    strip_data_parallel,
    tensor_dict,
    write_model,
)
from echoic.convert.hf_ast import ast_frontend, embed_defaults
from echoic.convert.mae_vit import (
    block_depth,
    grid_table,
    map_blocks,
    patch_projection,
    timm_heads,
)
from echoic.convert.pickle_scan import holds_suffixes
from echoic.convert.registry import register
from echoic.convert.safe_pickle import load_pickle
from echoic.encoders.mae_family import mae_family_config
from echoic.encoders.vit import ViTConfig

__all__ = ["EAT", "read_fairseq_state"]

IMAGE = "modality_encoders.IMAGE."
MARKERS = (f"{IMAGE}local_encoder.proj.weight", f"{IMAGE}fixed_positional_encoder.positions")
FAIRSEQ_STUBS = ("collections.defaultdict",)
DROPPED = (
    rf"{IMAGE}decoder\..*|recon_proj\..*|cls_proj\..*|center|shared_decoder\..*"
    r"|fc_norm\..*|head\..*"
)
N_BINS = 128
EAT_MEAN, EAT_STD = -4.268, 4.569
LICENCE = "MIT"


def read_fairseq_state(file: Path, trust_pickle: bool) -> tuple[dict[str, torch.Tensor], Any]:
    """``(model state dict, model cfg or {})`` of a fairseq checkpoint (``_ema`` and a fine-tuned
    model's ``model.`` prefix removed)."""
    dump: Any = load_pickle(file, trust_pickle=trust_pickle, stubs=FAIRSEQ_STUBS)
    if not isinstance(dump, Mapping) or "model" not in dump:
        raise ConversionError(f"{file}: not a fairseq checkpoint (no 'model' entry).")
    raw = {k: v for k, v in dump["model"].items() if k != "_ema"}  # the teacher: a nested dict
    if any(k.startswith(f"model.{IMAGE}") for k in raw):
        raw = {k.removeprefix("model."): v for k, v in raw.items()}
    cfg = dump.get("cfg") or {}
    model_cfg = cfg.get("model", {}) if isinstance(cfg, Mapping) else {}
    if isinstance(model_cfg, Mapping) and isinstance(model_cfg.get("model"), Mapping):
        model_cfg = model_cfg["model"]  # a fine-tuning cfg wraps the pretraining one
    return strip_data_parallel(tensor_dict(raw, str(file))), model_cfg


def encoder_fields(
    state: Mapping[str, torch.Tensor], cfg: Mapping[str, Any], where: str
) -> ViTConfig:
    """The :class:`ViTConfig` of an EAT model state dict (heads and eps from its cfg when given)."""
    refused = [
        k
        for k in state
        if k.startswith(
            (f"{IMAGE}context_encoder.blocks.", f"{IMAGE}alibi", f"{IMAGE}local_encoder.1")
        )
    ]
    if refused:
        raise ConversionError(
            f"{where}: {refused[0]!r}: pre-net blocks, ALiBi biases and projected patch embeddings "
            "are not part of EAT's published layout and are not supported."
        )
    extra = state.get(f"{IMAGE}extra_tokens")
    if extra is not None and extra.shape[1] != 1:
        raise ConversionError(f"{where}: {extra.shape[1]} extra tokens; EAT has one (the CLS).")
    kernel = state[f"{IMAGE}local_encoder.proj.weight"]
    dim, patch_t, patch_f = int(kernel.shape[0]), int(kernel.shape[2]), int(kernel.shape[3])
    n_freq = N_BINS // patch_f
    rows = int(state[f"{IMAGE}fixed_positional_encoder.positions"].shape[1])
    if rows % n_freq:
        raise ConversionError(
            f"{where}: {rows} position rows do not fill {n_freq} frequency patches of {patch_f} "
            f"bins (of {N_BINS})."
        )
    post_norm = f"{IMAGE}context_encoder.norm.weight" in state
    if not post_norm and "norm.weight" not in state:
        raise ConversionError(f"{where}: neither the input norm nor a final norm; not EAT.")
    return mae_family_config(
        "eat",
        dim,
        block_depth(state),
        int(cfg.get("num_heads") or timm_heads(dim)),
        patch=(patch_f, patch_t),
        patch_stride=(patch_f, patch_t),
        position_grid=(n_freq, rows // n_freq),
        mlp_ratio=state["blocks.0.mlp.fc1.weight"].shape[0] / dim,
        qkv_bias="blocks.0.attn.qkv.bias" in state,
        norm_eps=float(cfg.get("norm_eps") or 1e-6),
        cls_token=extra is not None,
        post_norm=post_norm,
    )


def map_weights(
    state: dict[str, torch.Tensor], config: ViTConfig, where: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Echoic ViT weights from an EAT model state dict, and the names dropped."""
    src = StateReader(state, where)
    norm = f"{IMAGE}context_encoder.norm" if config.post_norm else "norm"
    out = {
        "patch_embed.proj.weight": patch_projection(
            src.take(f"{IMAGE}local_encoder.proj.weight"), True, where
        ),
        "patch_embed.proj.bias": src.take(f"{IMAGE}local_encoder.proj.bias"),
        "positions.table": grid_table(
            src.take(f"{IMAGE}fixed_positional_encoder.positions")[0],
            config.layout().freq_tokens,
            True,
            where,
        ),
        "norm.weight": src.take(f"{norm}.weight"),
        "norm.bias": src.take(f"{norm}.bias"),
        **map_blocks(src, config.depth, config.qkv_bias),
    }
    if config.cls_token:
        out["cls_token"] = src.take(f"{IMAGE}extra_tokens")
    src.drop(DROPPED)
    src.finish()
    return out, src.dropped


@register
class EAT(CheckpointFileConverter):
    """EAT fairseq checkpoints (``.pt``) → the ``eat`` ViT on ``kaldi_fbank`` (AST's preset, EAT's
    statistics)."""

    name = "eat"
    description = "EAT fairseq checkpoint (.pt: {'cfg', 'model': data2vec 2.0 image model, ...})"
    reference = "no PyPI reference: cwx-worst-one/EAT's key layout (parity unverified)"
    file_kind = "EAT checkpoint file (.pt)"

    def recognises(self, file: Path, names: set[str]) -> bool:
        return holds_suffixes(names, MARKERS)

    def convert(self, path: Path, out_dir: Path, trust_pickle: bool = False) -> Path:
        file = self.checkpoint(path)
        state, cfg = read_fairseq_state(file, trust_pickle)
        encoder = encoder_fields(state, cfg if isinstance(cfg, Mapping) else {}, str(file))
        weights, dropped = map_weights(state, encoder, str(file))
        model = ModelConfig(
            encoder="eat",
            encoder_config=to_dict(encoder),
            frontend="kaldi_fbank",
            frontend_config=ast_frontend(N_BINS, mean=EAT_MEAN, std=EAT_STD),
            name=file.stem,
            licence=LICENCE,
            provenance=provenance(
                self, file, [file], LICENCE, dropped=sorted(dropped), parity=UNVERIFIED
            ),
            embed=embed_defaults(encoder),
        )
        return write_model(model, weights, out_dir)
