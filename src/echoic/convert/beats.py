"""BEATs checkpoints → ``BeatsEncoder`` (format ``beats``).

Reads one pickled torch file as unilm's ``BEATs_iter*.pt`` (and OpenBEATs' SSL checkpoints) hold
it: ``{"cfg": {...BEATsConfig fields...}, "model": state_dict}``. The file is unpickled safely
(:mod:`echoic.convert.safe_pickle`: the cfg is a plain dict); detection reads only the names in
the pickle's opcodes, never runs it. The BEATs tokenizer (``Tokenizers_iter*.pt``, a separate
checkpoint) is not converted.

Mapping onto :class:`~echoic.encoders.beats.BeatsEncoder` (docs/converting.md lists the traps):

- ``patch_embedding.weight`` ``(E, 1, 16, 16)``, kernel axes ``(time, freq)`` → ``patch_embed``
  ``(E, 256)`` with pixels ``(freq, time)``: transposed (``conv_bias`` → ``patch_bias``);
- ``layer_norm`` → ``patch_norm``; ``post_extract_proj`` → ``proj``;
- ``encoder.pos_conv.0`` (weight norm as ``weight_g`` / ``weight_v``, as ``parametrizations.weight.
  original0/1``, or folded) → ``pos_conv.conv``; ``encoder.layer_norm`` → ``norm``;
- per block ``self_attn.{q,k,v}_proj`` fused into ``attn.qkv``, ``out_proj`` → ``attn.proj``,
  ``grep_linear`` / ``grep_a`` → ``attn.gate.linear`` / ``.const``, ``self_attn_layer_norm`` /
  ``final_layer_norm`` → ``norm1`` / ``norm2``, ``fc1`` / ``fc2`` → ``mlp.fc1`` / ``fc2``;
- ``encoder.layers.0.self_attn.relative_attention_bias`` → the shared ``rel_pos.embedding``; the
  other layers store the same tensor (BEATs shares the module): checked equal, then dropped;
- ``predictor`` (the AudioSet head of fine-tuned checkpoints) is dropped.
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
    fuse_qkv,
    provenance,
    read_weights,
    strip_data_parallel,
    tensor_dict,
    weight_norm_pair,
    write_model,
)
from echoic.convert.pickle_scan import checkpoint_file
from echoic.convert.registry import register
from echoic.encoders.beats import BeatsConfig
from echoic.features.kaldi import KALDI_FBANK_PRESETS

__all__ = ["Beats", "encoder_config", "map_weights"]

DEFAULTS: dict[str, Any] = {
    "input_patch_size": 16,
    "embed_dim": 512,
    "conv_bias": False,
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "activation_fn": "gelu",
    "layer_norm_first": False,
    "deep_norm": False,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "relative_position_embedding": False,
    "num_buckets": 320,
    "max_distance": 1280,
    "gru_rel_pos": False,
}
"""BEATsConfig's defaults for the keys echoic reads (a checkpoint's cfg normally sets them all)."""
MARKERS = {"cfg", "model", "encoder_embed_dim", "patch_embedding.weight"}
"""Names every BEATs checkpoint's pickle holds."""
PARAM = "parametrizations.weight.original"


def encoder_config(cfg: dict[str, Any]) -> BeatsConfig:
    """The :class:`BeatsConfig` of a BEATs ``cfg`` dict; refuses what echoic does not implement."""

    def get(key: str) -> Any:
        value = cfg.get(key)
        return DEFAULTS[key] if value is None else value

    if get("activation_fn") != "gelu":
        raise ConversionError(
            f"BEATs cfg sets activation_fn={get('activation_fn')!r}; echoic implements 'gelu'."
        )
    if get("deep_norm") and get("layer_norm_first"):
        raise ConversionError("BEATs cfg sets both deep_norm and layer_norm_first (BEATs refuses).")
    dim, inner = int(get("encoder_embed_dim")), int(get("encoder_ffn_embed_dim"))
    if int(dim * (inner / dim)) != inner:
        raise ConversionError(
            f"encoder_ffn_embed_dim {inner} is not a representable multiple of {dim}."
        )
    patch = int(get("input_patch_size"))
    relative = bool(get("relative_position_embedding"))
    return BeatsConfig(
        dim=dim,
        depth=int(get("encoder_layers")),
        heads=int(get("encoder_attention_heads")),
        mlp_ratio=inner / dim,
        embed_dim=int(get("embed_dim")),
        patch_bias=bool(get("conv_bias")),
        patch=(patch, patch),
        pos_conv_kernel=int(get("conv_pos")),
        pos_conv_groups=int(get("conv_pos_groups")),
        deep_norm=bool(get("deep_norm")),
        norm_first=bool(get("layer_norm_first")),
        rel_pos_buckets=int(get("num_buckets")) if relative else 0,
        rel_pos_max_distance=int(get("max_distance")),
        gated_rel_pos=bool(get("gru_rel_pos")) and relative,
    )


def map_weights(
    state: dict[str, torch.Tensor], config: BeatsConfig, where: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Echoic ``BeatsEncoder`` weights from a BEATs state dict, and the names dropped on purpose."""
    src = StateReader(state, where)
    out: dict[str, torch.Tensor] = {}
    kernel = src.take("patch_embedding.weight")  # (E, 1, patch_t, patch_f): BEATs' fbank is (T, F)
    out["patch_embed.weight"] = kernel[:, 0].transpose(1, 2).reshape(kernel.shape[0], -1)
    if config.patch_bias:
        out["patch_embed.bias"] = src.take("patch_embedding.bias")
    for p in ("weight", "bias"):
        out[f"patch_norm.{p}"] = src.take(f"layer_norm.{p}")
        out[f"norm.{p}"] = src.take(f"encoder.layer_norm.{p}")
        if config.embed_dim != config.dim:
            out[f"proj.{p}"] = src.take(f"post_extract_proj.{p}")
    pos = "encoder.pos_conv.0"
    if f"{pos}.weight" in src:
        g, v = weight_norm_pair(weight=src.take(f"{pos}.weight"))
    else:
        g, v = weight_norm_pair(
            weight_g=src.take_first(f"{pos}.weight_g", f"{pos}.{PARAM}0"),
            weight_v=src.take_first(f"{pos}.weight_v", f"{pos}.{PARAM}1"),
        )
    out["pos_conv.conv.parametrizations.weight.original0"] = g
    out["pos_conv.conv.parametrizations.weight.original1"] = v
    out["pos_conv.conv.bias"] = src.take(f"{pos}.bias")
    table_name = "encoder.layers.{}.self_attn.relative_attention_bias.weight"
    if config.rel_pos_buckets:
        table = out["rel_pos.embedding.weight"] = src.take(table_name.format(0))
        for i in range(1, config.depth):
            copy = state.get(table_name.format(i))
            if copy is not None and not torch.equal(copy, table):
                raise ConversionError(
                    f"{where}: layer {i}'s relative_attention_bias differs from layer 0's; BEATs "
                    "shares one table across layers."
                )
        src.drop(r"encoder\.layers\.\d+\.self_attn\.relative_attention_bias\.weight")
    for i in range(config.depth):
        beats, ours = f"encoder.layers.{i}", f"blocks.{i}"
        att = f"{beats}.self_attn"
        fused = fuse_qkv(
            *((src.take(f"{att}.{n}_proj.weight"), src.take(f"{att}.{n}_proj.bias")) for n in "qkv")
        )
        out[f"{ours}.attn.qkv.weight"], out[f"{ours}.attn.qkv.bias"] = (
            fused["weight"],
            fused["bias"],
        )
        pairs = {
            "attn.proj": f"{att}.out_proj",
            "norm1": f"{beats}.self_attn_layer_norm",
            "norm2": f"{beats}.final_layer_norm",
            "mlp.fc1": f"{beats}.fc1",
            "mlp.fc2": f"{beats}.fc2",
        }
        if config.gated_rel_pos:
            pairs["attn.gate.linear"] = f"{att}.grep_linear"
            out[f"{ours}.attn.gate.const"] = src.take(f"{att}.grep_a")
        for target, source in pairs.items():
            for p in ("weight", "bias"):
                out[f"{ours}.{target}.{p}"] = src.take(f"{source}.{p}")
    src.drop(r"predictor\..*")
    src.finish()
    return out, src.dropped


@register
class Beats(CheckpointFileConverter):
    """unilm BEATs / OpenBEATs ``{"cfg", "model"}`` checkpoints → the ``beats`` encoder on the
    ``kaldi_fbank`` frontend (``"beats"`` preset)."""

    name = "beats"
    description = 'BEATs checkpoint (one .pt file holding {"cfg": ..., "model": state_dict})'
    reference = "espnet (espnet2.asr.encoder.beats_encoder.BeatsEncoder, unilm's BEATs code)"

    def recognises(self, file: Path, names: set[str]) -> bool:
        return MARKERS <= names

    def convert(self, path: Path, out_dir: Path, trust_pickle: bool = False) -> Path:
        file = checkpoint_file(path)
        if file is None:
            raise ConversionError(f"{path}: not a BEATs checkpoint file (or a folder holding one).")
        checkpoint = read_weights(file, trust_pickle)
        if not isinstance(checkpoint, dict) or not {"cfg", "model"} <= set(checkpoint):
            raise ConversionError(f"{file}: expected {{'cfg': ..., 'model': ...}} as BEATs saves.")
        cfg = checkpoint["cfg"]
        cfg = dict(cfg) if isinstance(cfg, dict) else dict(vars(cfg))
        encoder = encoder_config(cfg)
        state = strip_data_parallel(tensor_dict(checkpoint["model"], f"{file} ['model']"))
        weights, dropped = map_weights(state, encoder, str(file))
        heads = sorted({k.split(".")[0] for k in dropped if k.startswith("predictor.")})
        shared = len(dropped) - sum(k.startswith("predictor.") for k in dropped)
        files = self.source_files(path)
        config = ModelConfig(
            encoder="beats",
            encoder_config=to_dict(encoder),
            frontend="kaldi_fbank",
            frontend_config=dict(KALDI_FBANK_PRESETS["beats"]),
            name=file.stem,
            licence="unknown",
            provenance=provenance(
                self,
                file,
                files,
                "unknown",
                finetuned=bool(cfg.get("finetuned_model", False)),
                dropped=[
                    *heads,
                    *([f"shared relative_attention_bias copies ({shared})"] if shared else []),
                ],
            ),
        )
        return write_model(config, weights, out_dir)
