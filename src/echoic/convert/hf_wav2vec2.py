"""Hugging Face model folders of the wav2vec 2.0 family → ``WavEncoder`` (format ``hf-wav2vec2``).

Reads a folder written by transformers' ``save_pretrained`` (or downloaded from the hub):
``config.json`` with ``model_type`` ``wav2vec2`` / ``hubert`` / ``wavlm`` / ``data2vec-audio``, the
weights as ``model.safetensors`` or ``pytorch_model.bin`` (sharded ``*.index.json`` too), and, when
present, ``preprocessor_config.json`` (``do_normalize`` → the waveform frontend's ``per_item``
normalisation, ``sampling_rate``) and ``README.md`` (its ``license:`` front matter → the licence).
Weights of any head class (``Wav2Vec2ForCTC``, ``…ForPreTraining``, …) are accepted: the base model
(``wav2vec2.`` / ``hubert.`` / ``wavlm.`` / ``data2vec_audio.``) is kept, the heads are dropped.

Mapping onto :class:`~echoic.encoders.wav.WavEncoder` (docs/converting.md lists the traps):

- ``feature_extractor.conv_layers.{i}.conv / .layer_norm`` → ``feature_encoder.layers.{i}.conv /
  .norm`` (``feat_extract_norm`` ``group`` / ``layer`` → ``conv_mode``);
- ``feature_projection.layer_norm / .projection`` → ``feature_norm`` / ``feature_proj``;
- ``encoder.pos_conv_embed.conv`` (weight norm as ``weight_g`` / ``weight_v``, as
  ``parametrizations.weight.original0/1``, or already folded into ``weight``) → ``pos_conv.conv``;
  data2vec's ``encoder.pos_conv_embed.layers.{i}.conv`` → ``pos_conv.layers.{i}.conv``;
- ``encoder.layer_norm`` → ``input_norm`` (post-LN: after the positions) or ``norm`` (stable layer
  norm: after the last block);
- per block, ``attention.{q,k,v}_proj`` fused into ``attn.qkv`` (rows ``[q | k | v]``),
  ``out_proj`` → ``attn.proj``, ``layer_norm`` / ``final_layer_norm`` → ``norm1`` / ``norm2``,
  ``feed_forward.{intermediate,output}_dense`` → ``mlp.fc1`` / ``fc2``; WavLM's
  ``gru_rel_pos_linear`` / ``gru_rel_pos_const`` → ``attn.gate.linear`` / ``.const`` and layer 0's
  ``rel_attn_embed`` → the shared ``rel_pos.embedding``;
- ``masked_spec_embed`` (the pretraining mask vector) is dropped.
"""

from __future__ import annotations

import re
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
    weight_norm_pair,
    write_model,
)
from echoic.convert.hf_folder import HFFolderConverter, hub_id, licence_of, read_json
from echoic.convert.registry import register
from echoic.encoders.wav import WavConfig
from echoic.encoders.wav2vec2 import family_config

__all__ = ["HFWav2Vec2"]

FAMILY = {
    "wav2vec2": "wav2vec2",
    "hubert": "hubert",
    "wavlm": "wavlm",
    "data2vec-audio": "data2vec_audio",
}
"""transformers ``model_type`` → echoic encoder family."""
PREFIX = {
    "wav2vec2": "wav2vec2.",
    "hubert": "hubert.",
    "wavlm": "wavlm.",
    "data2vec-audio": "data2vec_audio.",
}
"""Where a head class keeps the base model's weights."""

DEFAULTS: dict[str, Any] = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "feat_extract_activation": "gelu",
    "layer_norm_eps": 1e-5,
    "feat_extract_norm": "group",
    "conv_dim": [512] * 7,
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "conv_bias": False,
    "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16,
    "do_stable_layer_norm": False,
    "feat_proj_layer_norm": True,
    "num_buckets": 320,
    "max_bucket_distance": 800,
    "conv_pos_kernel_size": 19,
}
"""The transformers config defaults echoic reads (used when an older config.json omits a key)."""
DATA2VEC_DEFAULTS = {"num_conv_pos_embeddings": 5, "feat_extract_norm": "layer"}
"""data2vec audio: five positional convolutions; its feature encoder always uses LayerNorms."""

HEADS = r"(lm_head|quantizer|project_hid|project_q|projector|classifier|tdnn|feature_extractor|objective|layer_weights|final_proj|label_embs_concat|masked_spec_embed|dropout_features)(\..*)?"
"""Top-level weights of head classes, outside the base model."""
PARAM = "conv.parametrizations.weight.original"
"""torch.nn.utils.parametrizations.weight_norm's names (``0`` = g, ``1`` = v)."""


def encoder_fields(hf: dict[str, Any]) -> tuple[str, WavConfig]:
    """The echoic family and :class:`WavConfig` of a transformers ``config.json``; refuses
    options this converter does not map (adapters, other activations, batch-normed positions)."""
    model_type = hf.get("model_type", "")
    defaults = {**DEFAULTS, **(DATA2VEC_DEFAULTS if model_type == "data2vec-audio" else {})}

    def get(key: str) -> Any:
        value = hf.get(key)
        return defaults[key] if value is None else value

    refused = {
        "add_adapter": bool(hf.get("add_adapter")),
        "adapter_attn_dim": hf.get("adapter_attn_dim") is not None,
        "conv_pos_batch_norm": bool(hf.get("conv_pos_batch_norm")),
        "hidden_act": get("hidden_act") != "gelu",
        "feat_extract_activation": get("feat_extract_activation") != "gelu",
        "feat_extract_norm": get("feat_extract_norm") not in ("group", "layer"),
    }
    bad = [key for key, wrong in refused.items() if wrong]
    if bad:
        raise ConversionError(
            f"config.json sets {', '.join(f'{k}={hf.get(k)!r}' for k in bad)}, which echoic's "
            "wav2vec 2.0 family does not implement (expected no adapters, gelu, group/layer norm)."
        )
    dim, inner = int(get("hidden_size")), int(get("intermediate_size"))
    if int(dim * (inner / dim)) != inner:
        raise ConversionError(
            f"intermediate_size {inner} is not a representable multiple of {dim}."
        )
    conv = list(zip(get("conv_dim"), get("conv_kernel"), get("conv_stride"), strict=True))
    family = FAMILY[model_type]
    fields: dict[str, Any] = {
        "conv_mode": (
            "group_norm"
            if get("feat_extract_norm") == "group" and model_type != "data2vec-audio"
            else "layer_norm"
        ),
        "conv_bias": bool(get("conv_bias")),
        "mlp_ratio": inner / dim,
        "norm_eps": float(get("layer_norm_eps")),
        "norm_first": bool(get("do_stable_layer_norm")) and family != "data2vec_audio",
        "pos_conv_groups": int(get("num_conv_pos_embedding_groups")),
        "feature_norm": bool(get("feat_proj_layer_norm")) or family != "hubert",
    }
    if family == "data2vec_audio":
        fields["pos_conv_kernel"] = int(get("conv_pos_kernel_size"))
        fields["pos_conv_layers"] = int(get("num_conv_pos_embeddings"))
    else:
        fields["pos_conv_kernel"] = int(get("num_conv_pos_embeddings"))
    if family == "wavlm":
        fields["rel_pos_buckets"] = int(get("num_buckets"))
        fields["rel_pos_max_distance"] = int(get("max_bucket_distance"))
    fields["conv_layers"] = tuple((int(d), int(k), int(s)) for d, k, s in conv)
    depth, heads = int(get("num_hidden_layers")), int(get("num_attention_heads"))
    return family, family_config(family, dim=dim, depth=depth, heads=heads, **fields)


def map_weights(
    state: dict[str, torch.Tensor], config: WavConfig, where: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Echoic ``WavEncoder`` weights from a transformers base-model state dict; also returns the
    names of the source weights dropped on purpose."""
    src = StateReader(state, where)
    out: dict[str, torch.Tensor] = {}
    for i in range(len(config.conv_layers)):
        out[f"feature_encoder.layers.{i}.conv.weight"] = src.take(
            f"feature_extractor.conv_layers.{i}.conv.weight"
        )
        if config.conv_bias:
            out[f"feature_encoder.layers.{i}.conv.bias"] = src.take(
                f"feature_extractor.conv_layers.{i}.conv.bias"
            )
        if config.conv_mode == "layer_norm" or i == 0:
            for p in ("weight", "bias"):
                out[f"feature_encoder.layers.{i}.norm.{p}"] = src.take(
                    f"feature_extractor.conv_layers.{i}.layer_norm.{p}"
                )
    for p in ("weight", "bias"):
        if config.feature_norm:
            out[f"feature_norm.{p}"] = src.take(f"feature_projection.layer_norm.{p}")
        out[f"feature_proj.{p}"] = src.take(f"feature_projection.projection.{p}")
        out[f"{'norm' if config.norm_first else 'input_norm'}.{p}"] = src.take(
            f"encoder.layer_norm.{p}"
        )
    pos = "encoder.pos_conv_embed"
    if config.pos_conv_mode == "stacked":
        for i in range(config.pos_conv_layers):
            for p in ("weight", "bias"):
                out[f"pos_conv.layers.{i}.conv.{p}"] = src.take(f"{pos}.layers.{i}.conv.{p}")
    else:
        if f"{pos}.conv.weight" in src:  # weight norm already folded in
            g, v = weight_norm_pair(weight=src.take(f"{pos}.conv.weight"))
        else:
            g, v = weight_norm_pair(
                weight_g=src.take_first(f"{pos}.conv.weight_g", f"{pos}.{PARAM}0"),
                weight_v=src.take_first(f"{pos}.conv.weight_v", f"{pos}.{PARAM}1"),
            )
        out["pos_conv.conv.parametrizations.weight.original0"] = g
        out["pos_conv.conv.parametrizations.weight.original1"] = v
        out["pos_conv.conv.bias"] = src.take(f"{pos}.conv.bias")
    if config.rel_pos_buckets:
        out["rel_pos.embedding.weight"] = src.take(
            "encoder.layers.0.attention.rel_attn_embed.weight"
        )
    for i in range(config.depth):
        hf, ours = f"encoder.layers.{i}", f"blocks.{i}"
        att = f"{hf}.attention"
        fused = fuse_qkv(
            *((src.take(f"{att}.{n}_proj.weight"), src.take(f"{att}.{n}_proj.bias")) for n in "qkv")
        )
        out[f"{ours}.attn.qkv.weight"], out[f"{ours}.attn.qkv.bias"] = (
            fused["weight"],
            fused["bias"],
        )
        pairs = {
            "attn.proj": f"{att}.out_proj",
            "norm1": f"{hf}.layer_norm",
            "norm2": f"{hf}.final_layer_norm",
            "mlp.fc1": f"{hf}.feed_forward.intermediate_dense",
            "mlp.fc2": f"{hf}.feed_forward.output_dense",
        }
        if config.rel_pos_buckets:
            pairs["attn.gate.linear"] = f"{att}.gru_rel_pos_linear"
        for target, source in pairs.items():
            for p in ("weight", "bias"):
                out[f"{ours}.{target}.{p}"] = src.take(f"{source}.{p}")
        if config.rel_pos_buckets:
            out[f"{ours}.attn.gate.const"] = src.take(f"{att}.gru_rel_pos_const")
    src.drop("masked_spec_embed")
    src.finish()
    return out, src.dropped


@register
class HFWav2Vec2(HFFolderConverter):
    """transformers ``Wav2Vec2Model`` / ``HubertModel`` / ``WavLMModel`` / ``Data2VecAudioModel``
    folders (any head class) → the ``wav2vec2`` / ``hubert`` / ``wavlm`` / ``data2vec_audio``
    encoders on the ``waveform`` frontend."""

    name = "hf-wav2vec2"
    description = (
        "Hugging Face folder (config.json model_type wav2vec2 | hubert | wavlm | data2vec-audio "
        "+ model.safetensors or pytorch_model.bin)"
    )
    reference = "transformers (Wav2Vec2Model, HubertModel, WavLMModel, Data2VecAudioModel)"

    model_types = frozenset(FAMILY)
    folder_kind = "transformers wav2vec 2.0-family folder"

    def convert(self, path: Path, out_dir: Path, trust_pickle: bool = False) -> Path:
        folder, hf, state = self.read_folder(path, trust_pickle)
        model_type = hf["model_type"]
        family, encoder = encoder_fields(hf)
        prefix = PREFIX[model_type]
        heads: list[str] = []
        if any(key.startswith(prefix) for key in state):
            heads = sorted({k.split(".")[0] for k in state if not k.startswith(prefix)})
            unknown = [h for h in heads if not re.fullmatch(HEADS, h)]
            if unknown:
                raise ConversionError(f"{folder}: weights {unknown} lie outside the base model.")
            state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        weights, dropped = map_weights(state, encoder, str(folder))
        preprocessor = read_json(folder / "preprocessor_config.json")
        frontend = {
            "sample_rate": int(preprocessor.get("sampling_rate", 16000)),
            "per_item": bool(preprocessor.get("do_normalize", False)),
        }
        files = self.source_files(path)
        licence = licence_of(folder)
        config = ModelConfig(
            encoder=family,
            encoder_config=to_dict(encoder),
            frontend="waveform",
            frontend_config=frontend,
            name=folder.resolve().name,
            licence=licence,
            provenance=provenance(
                self,
                folder,
                files,
                licence,
                model_type=model_type,
                architectures=hf.get("architectures"),
                hub_id=hub_id(hf.get("_name_or_path")),
                dropped=sorted({*dropped, *heads}),
                do_normalize=(
                    "preprocessor_config.json" if preprocessor else "absent: not normalised"
                ),
            ),
        )
        return write_model(config, weights, out_dir)
