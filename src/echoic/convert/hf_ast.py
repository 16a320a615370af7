"""Hugging Face Audio Spectrogram Transformer folders → the ``ast`` ViT (format ``hf-ast``).

Reads a folder written by transformers' ``save_pretrained`` (or downloaded from the hub, e.g.
``MIT/ast-finetuned-audioset-10-10-0.4593``): ``config.json`` with ``model_type``
``audio-spectrogram-transformer``, the weights (``model.safetensors`` / ``pytorch_model.bin``, any
head class: ``ASTForAudioClassification``'s ``classifier`` is dropped), and when present
``preprocessor_config.json`` (``ASTFeatureExtractor``: ``mean`` / ``std`` / ``do_normalize`` /
``num_mel_bins`` → the ``kaldi_fbank`` frontend's ``"ast"`` preset) and ``README.md`` (licence).

Mapping onto :class:`~echoic.encoders.vit.ViTEncoder` (``encoders/ast.py``; docs/converting.md
lists the traps):

- ``embeddings.patch_embeddings.projection`` (``Conv2d(1, D, 16, stride=(fstride, tstride))``) →
  ``patch_embed.proj`` (weight reshaped to ``(D, 256)``), ``patch_stride = (fstride, tstride)``;
- ``embeddings.position_embeddings`` ``(1, 2 + F·T, D)``: rows 2… (frequency-major) →
  ``positions.table`` ``(F, T, D)``; rows 0 and 1 are added to ``cls_token`` /
  ``distillation_token`` → ``cls_token`` / ``dist_token`` (what the model adds to them anyway);
- per block, ``attention.{q,k,v}_proj`` fused into ``attn.qkv``, ``o_proj`` → ``attn.proj``,
  ``layernorm_before`` / ``layernorm_after`` → ``norm1`` / ``norm2``, ``mlp.fc1`` / ``fc2``
  (transformers 4 names — ``encoder.layer.{i}.attention.attention.query`` …,
  ``attention.output.dense``, ``intermediate.dense``, ``output.dense`` — are read too);
- ``layernorm`` → ``norm``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from echoic.checkpoint import ModelConfig
from echoic.config import to_dict
from echoic.convert.base import (
    ConversionError,
    StateReader,
    fuse_qkv,
    provenance,
    write_model,
)
from echoic.convert.hf_folder import HFFolderConverter, hub_id, licence_of, read_json
from echoic.convert.registry import register
from echoic.encoders.ast import ast_config
from echoic.encoders.vit import ViTConfig
from echoic.features.kaldi import KALDI_FBANK_PRESETS

__all__ = [
    "HFAST",
    "ast_frontend",
    "embed_defaults",
    "encoder_fields",
    "map_prefix_and_table",
    "map_weights",
]

MODEL_TYPE = "audio-spectrogram-transformer"
PREFIX = "audio_spectrogram_transformer."
DEFAULTS: dict[str, Any] = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
    "patch_size": 16,
    "qkv_bias": True,
    "frequency_stride": 10,
    "time_stride": 10,
    "max_length": 1024,
    "num_mel_bins": 128,
}
"""transformers' ``ASTConfig`` defaults for the keys echoic reads."""
V4_NAMES = {
    "attention.q_proj": "attention.attention.query",
    "attention.k_proj": "attention.attention.key",
    "attention.v_proj": "attention.attention.value",
    "attention.o_proj": "attention.output.dense",
    "mlp.fc1": "intermediate.dense",
    "mlp.fc2": "output.dense",
}
"""transformers 5 name → the name in checkpoints written by transformers 4 (most hub files)."""


def encoder_fields(hf: dict[str, Any]) -> ViTConfig:
    """The :class:`ViTConfig` of a transformers AST ``config.json``."""

    def get(key: str) -> Any:
        value = hf.get(key)
        return DEFAULTS[key] if value is None else value

    if get("hidden_act") != "gelu":
        raise ConversionError(
            f"config.json sets hidden_act={get('hidden_act')!r}; echoic's ViT uses exact GELU."
        )
    dim, patch = int(get("hidden_size")), int(get("patch_size"))
    strides = (int(get("frequency_stride")), int(get("time_stride")))
    n_bins, frames = int(get("num_mel_bins")), int(get("max_length"))
    grid = ((n_bins - patch) // strides[0] + 1, (frames - patch) // strides[1] + 1)
    return ast_config(
        dim,
        int(get("num_hidden_layers")),
        int(get("num_attention_heads")),
        position_grid=grid,
        mlp_ratio=int(get("intermediate_size")) / dim,
        patch=(patch, patch),
        patch_stride=strides,
        n_bins=n_bins,
        norm_eps=float(get("layer_norm_eps")),
        qkv_bias=bool(get("qkv_bias")),
    )


def ast_frontend(
    n_mels: int = 128, mean: float = -4.2677393, std: float = 4.5689974, sample_rate: int = 16000
) -> dict[str, Any]:
    """The ``kaldi_fbank`` config of AST's features: the ``"ast"`` preset with the dataset's
    ``mean`` and ``std`` — AST divides by twice the std, ``(fbank - mean) / (2 * std)``."""
    preset = KALDI_FBANK_PRESETS["ast"]
    return {**preset, "n_mels": n_mels, "mean": mean, "std": 2 * std, "sample_rate": sample_rate}


def embed_defaults(config: ViTConfig, frame_hop_s: float = 0.01) -> dict[str, float]:
    """The Embedder settings a converted model recommends: chunks of the learned table's time
    steps (so the encoder never has to stretch the table), overlapping by a quarter of a chunk
    when the default overlap (2.56 s) would be more than half of one."""
    assert config.position_grid is not None
    stride = config.patch[1] if config.patch_stride is None else config.patch_stride[1]
    chunk = round(config.position_grid[1] * stride * frame_hop_s, 6)
    return {"chunk_s": chunk} if chunk > 2 * 2.56 else {"chunk_s": chunk, "overlap_s": chunk / 4}


def map_prefix_and_table(
    src: StateReader, config: ViTConfig, names: dict[str, str]
) -> dict[str, torch.Tensor]:
    """The embedding weights: patch projection, summary tokens with their positions folded in,
    and the position table (``names``: echoic role → source weight name)."""
    assert config.position_grid is not None
    dim = config.dim
    table = src.take(names["positions"])[0]  # (n_prefix + F·T, D)
    n_prefix = 1 + int(config.dist_token)
    n_freq, n_time = config.position_grid
    if table.shape != (n_prefix + n_freq * n_time, dim):
        raise ConversionError(
            f"{src.where}: position table of shape {tuple(table.shape)}; the patch geometry gives "
            f"{n_prefix} + {n_freq} × {n_time} rows of {dim}."
        )
    out = {
        "patch_embed.proj.weight": src.take(names["proj.weight"]).reshape(dim, -1),
        "patch_embed.proj.bias": src.take(names["proj.bias"]),
        "positions.table": table[n_prefix:].reshape(n_freq, n_time, dim),
        "cls_token": src.take(names["cls"]) + table[0],
    }
    if config.dist_token:
        out["dist_token"] = src.take(names["dist"]) + table[1]
    return out


def map_weights(
    state: dict[str, torch.Tensor], config: ViTConfig, where: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Echoic ViT weights from a transformers ``ASTModel`` state dict (either naming)."""
    src = StateReader(state, where)
    emb = "embeddings."
    out = map_prefix_and_table(
        src,
        config,
        {
            "positions": f"{emb}position_embeddings",
            "proj.weight": f"{emb}patch_embeddings.projection.weight",
            "proj.bias": f"{emb}patch_embeddings.projection.bias",
            "cls": f"{emb}cls_token",
            "dist": f"{emb}distillation_token",
        },
    )
    v4 = "encoder.layer.0.layernorm_before.weight" in src
    for i in range(config.depth):
        layer = f"encoder.layer.{i}" if v4 else f"layers.{i}"

        def name(role: str, layer: str = layer) -> str:
            return f"{layer}.{V4_NAMES.get(role, role) if v4 else role}"

        projections = [name(f"attention.{n}_proj") for n in "qkv"]
        qkv = fuse_qkv(
            *(
                (src.take(f"{p}.weight"), src.take(f"{p}.bias") if config.qkv_bias else None)
                for p in projections
            )
        )
        ours = f"blocks.{i}"
        for p, value in qkv.items():
            out[f"{ours}.attn.qkv.{p}"] = value
        pairs = {
            "attn.proj": "attention.o_proj",
            "norm1": "layernorm_before",
            "norm2": "layernorm_after",
            "mlp.fc1": "mlp.fc1",
            "mlp.fc2": "mlp.fc2",
        }
        for target, role in pairs.items():
            for p in ("weight", "bias"):
                out[f"{ours}.{target}.{p}"] = src.take(f"{name(role)}.{p}")
    for p in ("weight", "bias"):
        out[f"norm.{p}"] = src.take(f"layernorm.{p}")
    src.finish()
    return out, src.dropped


@register
class HFAST(HFFolderConverter):
    """transformers ``ASTModel`` / ``ASTForAudioClassification`` folders → the ``ast`` ViT on
    the ``kaldi_fbank`` frontend (AST's normalisation)."""

    name = "hf-ast"
    description = (
        "Hugging Face folder (config.json model_type audio-spectrogram-transformer + "
        "model.safetensors or pytorch_model.bin)"
    )
    reference = "transformers (ASTModel)"

    model_types = frozenset({MODEL_TYPE})
    folder_kind = "transformers AST folder"

    def convert(self, path: Path, out_dir: Path, trust_pickle: bool = False) -> Path:
        folder, hf, state = self.read_folder(path, trust_pickle)
        encoder = encoder_fields(hf)
        heads: list[str] = []
        if any(key.startswith(PREFIX) for key in state):
            heads = sorted({k.split(".")[0] for k in state if not k.startswith(PREFIX)})
            if any(h != "classifier" for h in heads):
                raise ConversionError(f"{folder}: weights {heads} lie outside the base model.")
            state = {k[len(PREFIX) :]: v for k, v in state.items() if k.startswith(PREFIX)}
        weights, dropped = map_weights(state, encoder, str(folder))
        extractor = read_json(folder / "preprocessor_config.json")
        frontend = ast_frontend(
            encoder.n_bins, sample_rate=int(extractor.get("sampling_rate", 16000))
        )
        if "mean" in extractor or "std" in extractor:
            frontend.update(mean=float(extractor["mean"]), std=2 * float(extractor["std"]))
        if not extractor.get("do_normalize", True):
            frontend.update(mean=0.0, std=1.0)
        files = self.source_files(path)
        licence = licence_of(folder)
        frames = int(hf.get("max_length") or DEFAULTS["max_length"])
        config = ModelConfig(
            encoder="ast",
            encoder_config=to_dict(encoder),
            frontend="kaldi_fbank",
            frontend_config=frontend,
            name=folder.resolve().name,
            licence=licence,
            provenance=provenance(
                self,
                folder,
                files,
                licence,
                model_type=MODEL_TYPE,
                architectures=hf.get("architectures"),
                hub_id=hub_id(hf.get("_name_or_path")),
                dropped=sorted({*dropped, *heads}),
                max_length=frames,
                normalisation=(
                    "preprocessor_config.json" if extractor else "absent: AST's defaults"
                ),
            ),
            embed=embed_defaults(encoder),
        )
        return write_model(config, weights, out_dir)
