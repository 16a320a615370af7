"""Hugging Face Whisper folders → Whisper's audio encoder (format ``hf-whisper``).

Reads a folder written by transformers' ``save_pretrained`` (or downloaded from the hub):
``config.json`` with ``model_type`` ``whisper``, the weights as ``model.safetensors`` /
``pytorch_model.bin`` (sharded too), and, when present, ``preprocessor_config.json`` (the
``WhisperFeatureExtractor``'s mel bins, hop, FFT size and window length → the ``whisper_logmel``
frontend) and ``README.md`` (licence). ``WhisperModel``, ``WhisperForConditionalGeneration``
(weights under ``model.``) and ``WhisperForAudioClassification`` are read alike.

Only the encoder is kept. The decoder (``decoder.*``), the tied output projection (``proj_out``)
and classification heads (``projector``, ``classifier``, ``layer_weights``) are dropped on purpose
and listed in ``provenance.dropped``; any other weight left over fails the conversion.

Mapping onto :class:`~echoic.encoders.whisper.WhisperEncoder`: ``conv1`` / ``conv2`` as they are,
``embed_positions.weight`` → the ``positions`` buffer (the stored table, sinusoidal in every public
checkpoint), per block ``self_attn.{q,k,v}_proj`` fused into ``attn.qkv`` (Whisper's key has no
bias: zeros, which change no attention weight), ``out_proj`` → ``attn.proj``,
``self_attn_layer_norm`` / ``final_layer_norm`` → ``norm1`` / ``norm2`` (pre-LN), ``fc1`` / ``fc2``
→ ``mlp.fc1`` / ``fc2``, ``layer_norm`` → ``norm``.
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
    write_model,
)
from echoic.convert.hf_folder import HFFolderConverter, hub_id, licence_of, read_json
from echoic.convert.registry import register
from echoic.encoders.whisper import WhisperEncoderConfig

__all__ = ["HFWhisper", "encoder_config", "map_weights"]

DEFAULTS: dict[str, Any] = {
    "d_model": 384,
    "encoder_layers": 4,
    "encoder_attention_heads": 6,
    "encoder_ffn_dim": 1536,
    "num_mel_bins": 80,
    "max_source_positions": 1500,
    "activation_function": "gelu",
}
"""transformers' WhisperConfig defaults for the keys echoic reads (older config.json files)."""
DROPPED = r"(model\.)?(decoder\..*|proj_out\..*|projector\..*|classifier\..*|layer_weights)"
"""Weights outside the encoder, dropped on purpose."""


def encoder_config(hf: dict[str, Any]) -> WhisperEncoderConfig:
    """The :class:`WhisperEncoderConfig` of a transformers Whisper ``config.json``."""

    def get(key: str) -> Any:
        value = hf.get(key)
        return DEFAULTS[key] if value is None else value

    if get("activation_function") != "gelu":
        raise ConversionError(
            f"config.json sets activation_function={get('activation_function')!r}; echoic's "
            "Whisper encoder implements Whisper's exact GELU only."
        )
    dim, inner = int(get("d_model")), int(get("encoder_ffn_dim"))
    if int(dim * (inner / dim)) != inner:
        raise ConversionError(f"encoder_ffn_dim {inner} is not a representable multiple of {dim}.")
    return WhisperEncoderConfig(
        dim=dim,
        depth=int(get("encoder_layers")),
        heads=int(get("encoder_attention_heads")),
        n_bins=int(get("num_mel_bins")),
        max_positions=int(get("max_source_positions")),
        mlp_ratio=inner / dim,
    )


def map_weights(
    state: dict[str, torch.Tensor], config: WhisperEncoderConfig, where: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Echoic ``WhisperEncoder`` weights from a transformers Whisper state dict (any class), and
    the groups of source weights dropped on purpose (``decoder``, ``proj_out``, …)."""
    src = StateReader(state, where)
    enc = "model.encoder" if any(k.startswith("model.encoder.") for k in state) else "encoder"
    out: dict[str, torch.Tensor] = {}
    for name in ("conv1", "conv2"):
        for p in ("weight", "bias"):
            out[f"{name}.{p}"] = src.take(f"{enc}.{name}.{p}")
    table = src.take(f"{enc}.embed_positions.weight")
    if tuple(table.shape) != (config.max_positions, config.dim):
        raise ConversionError(
            f"{where}: embed_positions has shape {tuple(table.shape)}; config.json gives "
            f"({config.max_positions}, {config.dim})."
        )
    out["positions"] = table
    for p in ("weight", "bias"):
        out[f"norm.{p}"] = src.take(f"{enc}.layer_norm.{p}")
    for i in range(config.depth):
        hf, ours = f"{enc}.layers.{i}", f"blocks.{i}"
        att = f"{hf}.self_attn"

        fused = fuse_qkv(*(_projection(src, f"{att}.{name}_proj") for name in "qkv"))
        out[f"{ours}.attn.qkv.weight"], out[f"{ours}.attn.qkv.bias"] = (
            fused["weight"],
            fused["bias"],
        )
        pairs = {
            "attn.proj": f"{att}.out_proj",
            "norm1": f"{hf}.self_attn_layer_norm",
            "norm2": f"{hf}.final_layer_norm",
            "mlp.fc1": f"{hf}.fc1",
            "mlp.fc2": f"{hf}.fc2",
        }
        for target, source in pairs.items():
            for p in ("weight", "bias"):
                out[f"{ours}.{target}.{p}"] = src.take(f"{source}.{p}")
    src.drop(DROPPED)
    src.finish()
    groups = sorted({re.sub(r"^model\.", "", key).split(".")[0] for key in src.dropped})
    return out, groups


def _projection(src: StateReader, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(weight, bias or None)`` of a Linear (Whisper's key projection has no bias)."""
    bias = f"{name}.bias"
    return src.take(f"{name}.weight"), src.take(bias) if bias in src else None


def frontend_config(hf: dict[str, Any], preprocessor: dict[str, Any]) -> dict[str, Any]:
    """The ``whisper_logmel`` settings of a ``preprocessor_config.json`` (Whisper's defaults when
    absent; the mel bins then come from ``num_mel_bins``)."""
    n_mels = int(preprocessor.get("feature_size", hf.get("num_mel_bins") or 80))
    if n_mels != int(hf.get("num_mel_bins") or 80):
        raise ConversionError(
            f"preprocessor_config.json gives {n_mels} mel bins, config.json num_mel_bins "
            f"{hf.get('num_mel_bins')}: they must agree."
        )
    return {
        "sample_rate": int(preprocessor.get("sampling_rate", 16000)),
        "n_fft": int(preprocessor.get("n_fft", 400)),
        "hop_length": int(preprocessor.get("hop_length", 160)),
        "n_mels": n_mels,
        "chunk_length_s": float(preprocessor.get("chunk_length", 30)),
    }


@register
class HFWhisper(HFFolderConverter):
    """transformers ``WhisperModel`` / ``WhisperForConditionalGeneration`` /
    ``WhisperForAudioClassification`` folders → the ``whisper_encoder`` on ``whisper_logmel``."""

    name = "hf-whisper"
    description = (
        "Hugging Face folder (config.json model_type whisper + model.safetensors or "
        "pytorch_model.bin); the encoder is kept, the decoder dropped"
    )
    reference = "transformers (WhisperEncoder, WhisperFeatureExtractor)"

    model_types = frozenset({"whisper"})
    folder_kind = "transformers Whisper folder"

    def convert(self, path: Path, out_dir: Path, trust_pickle: bool = False) -> Path:
        folder, hf, state = self.read_folder(path, trust_pickle)
        encoder = encoder_config(hf)
        weights, dropped = map_weights(state, encoder, str(folder))
        preprocessor = read_json(folder / "preprocessor_config.json")
        frontend = frontend_config(hf, preprocessor)
        seconds = 2 * encoder.max_positions * frontend["hop_length"] / frontend["sample_rate"]
        files = self.source_files(path)
        licence = licence_of(folder)
        config = ModelConfig(
            encoder="whisper_encoder",
            encoder_config=to_dict(encoder),
            frontend="whisper_logmel",
            frontend_config=frontend,
            name=folder.resolve().name,
            licence=licence,
            provenance=provenance(
                self,
                folder,
                files,
                licence,
                model_type="whisper",
                architectures=hf.get("architectures"),
                hub_id=hub_id(hf.get("_name_or_path")),
                dropped=dropped,
                preprocessor=(
                    "preprocessor_config.json" if preprocessor else "absent: Whisper's defaults"
                ),
            ),
            embed={"chunk_s": seconds},  # one full Whisper window per chunk
        )
        return write_model(config, weights, out_dir)
