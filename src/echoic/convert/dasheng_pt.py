"""Dasheng checkpoints → the ``dasheng`` ViT on the ``centred_mel`` frontend (format ``dasheng``).

Dasheng's ``from_pretrained`` reads ``torch.load(path)`` = ``{"model": state dict, "config":
constructor keywords}`` (the published ``dasheng_base.pt``, ``dasheng_06b.pt``, ``dasheng_12b.pt``);
a bare state dict is read too. The ``dasheng_*`` loaders pass ``embed_dim`` / ``depth`` /
``num_heads`` themselves, so a checkpoint's config may lack them: the width and depth are read
from the weights and the heads from the config, else from the published sizes
(:data:`~echoic.encoders.dasheng.DASHENG_SIZES`: 768 → 12, 1280 → 16, 1536 → 24).

Mapping onto :class:`~echoic.encoders.vit.ViTEncoder` (``encoders/dasheng.py``):

- ``front_end.0`` (torchaudio ``MelSpectrogram``) and ``front_end.1`` (``AmplitudeToDB``) → the
  ``centred_mel`` frontend's config (``n_fft``, ``hop_size``, ``n_mels``, ``f_min``, ``f_max``,
  ``top_db``); their buffers are dropped after checking that the stored filter bank and window
  are the ones the frontend computes;
- ``init_bn.1`` (``BatchNorm2d`` over the mel bins) → ``input_norm`` (``num_batches_tracked``
  dropped);
- ``patch_embed.proj`` (``Conv2d(1, D, (64, 4), stride (64, 4))``) → ``patch_embed.proj``;
- ``time_pos_embed`` ``(1, D, 1, T)`` / ``freq_pos_embed`` ``(1, D, F, 1)`` → ``positions.time``
  ``(T, D)`` / ``positions.freq`` ``(F, D)``;
- ``cls_token`` + ``token_pos_embed`` (``pooling="token"`` only) → ``cls_token``;
- ``blocks.{i}.*`` → ``blocks.{i}.*`` (same names: ``norm1``, ``attn.qkv``, ``attn.proj``,
  ``norm2``, ``mlp.fc1``, ``mlp.fc2``, ``ls1.gamma`` / ``ls2.gamma`` with ``init_values``);
  ``norm`` → ``norm``.
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
from echoic.convert.registry import register
from echoic.encoders.dasheng import DASHENG_SIZES, dasheng_config
from echoic.encoders.vit import ViTConfig
from echoic.features.base import build_frontend
from echoic.features.centred_mel import CentredMelFrontend

__all__ = ["Dasheng", "encoder_fields", "map_weights"]

MARKERS = {"time_pos_embed", "freq_pos_embed", "patch_embed.proj.weight", "init_bn.1.running_mean"}
"""Names every Dasheng encoder checkpoint's pickle holds."""
DEFAULTS: dict[str, Any] = {
    "patch_stride": (64, 4),
    "mlp_ratio": 4.0,
    "qkv_bias": True,
    "init_values": None,
    "target_length": 1008,
    "pooling": "mean",
    "n_fft": 512,
    "n_mels": 64,
    "hop_size": 160,
    "win_size": 512,
    "f_min": 0,
    "f_max": 8000,
    "center": True,
    "top_db": 120,
    "norm_layer": None,
    "act_layer": None,
    "block_type": "Block",
    "attention_type": "Attention",
}
"""``AudioTransformerMAE_Encoder``'s defaults for the keywords echoic reads."""


def _pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


def encoder_fields(
    state: Mapping[str, torch.Tensor], config: Mapping[str, Any], where: str
) -> tuple[ViTConfig, dict[str, Any]]:
    """The :class:`ViTConfig` and ``centred_mel`` frontend config of a Dasheng checkpoint."""

    def get(key: str) -> Any:
        return config.get(key, DEFAULTS[key])

    refused = {
        "norm_layer": get("norm_layer") is not None,
        "act_layer": get("act_layer") is not None,
        "block_type": get("block_type") != "Block",
        "attention_type": get("attention_type") != "Attention",
        "center": not get("center"),
        "win_size": int(get("win_size")) != int(get("n_fft")),
    }
    bad = [key for key, wrong in refused.items() if wrong]
    if bad:
        raise ConversionError(
            f"{where}: config sets {', '.join(f'{k}={config.get(k)!r}' for k in bad)}, which "
            "echoic's Dasheng layout does not implement (default norm / GELU / blocks, centred "
            "frames with win_size == n_fft)."
        )
    dim = int(state["patch_embed.proj.weight"].shape[0])
    depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    heads = config.get("num_heads") or DASHENG_SIZES.get(dim, (0, 0))[1]
    if not heads:
        raise ConversionError(
            f"{where}: the checkpoint's config names no num_heads and width {dim} is not a "
            f"published Dasheng size ({sorted(DASHENG_SIZES)}); add num_heads to its config."
        )
    patch = _pair(tuple(state["patch_embed.proj.weight"].shape[2:]))
    stride = _pair(get("patch_stride"))
    n_mels = int(get("n_mels"))
    n_freq = (n_mels - patch[0]) // stride[0] + 1
    n_time = int(state["time_pos_embed"].shape[-1])
    hidden = int(state["blocks.0.mlp.fc1.weight"].shape[0])
    encoder = dasheng_config(
        dim,
        depth,
        int(heads),
        position_grid=(n_freq, n_time),
        patch=patch,
        patch_stride=stride,
        n_bins=n_mels,
        mlp_ratio=hidden / dim,
        qkv_bias="blocks.0.attn.qkv.bias" in state,
        cls_token=get("pooling") == "token",
        layer_scale=1.0 if "blocks.0.ls1.gamma" in state else None,
    )
    frontend = {
        "n_fft": int(get("n_fft")),
        "hop_length": int(get("hop_size")),
        "n_mels": n_mels,
        "f_min": float(get("f_min")),
        "f_max": float(get("f_max")),
        "top_db": None if get("top_db") is None else float(get("top_db")),
    }
    return encoder, frontend


def map_weights(
    state: dict[str, torch.Tensor], config: ViTConfig, frontend: dict[str, Any], where: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Echoic ViT weights from a Dasheng encoder state dict; checks the stored frontend buffers
    against the ``frontend`` config."""
    src = StateReader(state, where)
    mel = build_frontend("centred_mel", frontend)
    assert isinstance(mel, CentredMelFrontend)
    for name, ours in (
        ("front_end.0.mel_scale.fb", mel.mel_bank),
        ("front_end.0.spectrogram.window", mel.window),
    ):
        if name in src:  # checked here, dropped below: the frontend recomputes them
            stored = src.state[name]
            if stored.shape != ours.shape or float((stored - ours).abs().max()) > 1e-6:
                raise ConversionError(
                    f"{where}: the stored {name} differs from the one its config {frontend} "
                    "gives; the checkpoint's frontend settings are not what its config says."
                )
    dim = config.dim
    out = {
        "patch_embed.proj.weight": src.take("patch_embed.proj.weight").reshape(dim, -1),
        "patch_embed.proj.bias": src.take("patch_embed.proj.bias"),
        "positions.time": src.take("time_pos_embed")[0, :, 0].T,
        "positions.freq": src.take("freq_pos_embed")[0, :, :, 0].T,
        "norm.weight": src.take("norm.weight"),
        "norm.bias": src.take("norm.bias"),
    }
    for p in ("weight", "bias", "running_mean", "running_var"):
        out[f"input_norm.{p}"] = src.take(f"init_bn.1.{p}")
    if config.cls_token:
        out["cls_token"] = src.take("cls_token") + src.take("token_pos_embed")
    parts = ["norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"]
    for i in range(config.depth):
        for part in parts:
            for p in ("weight", "bias"):
                if part != "attn.qkv" or p == "weight" or config.qkv_bias:
                    out[f"blocks.{i}.{part}.{p}"] = src.take(f"blocks.{i}.{part}.{p}")
        if config.layer_scale is not None:
            for scale in ("ls1", "ls2"):
                out[f"blocks.{i}.{scale}.gamma"] = src.take(f"blocks.{i}.{scale}.gamma")
    src.drop(r"init_bn\.1\.num_batches_tracked|front_end\..*")
    src.finish()
    return out, src.dropped


@register
class Dasheng(CheckpointFileConverter):
    """Dasheng ``.pt`` checkpoints (``{"model", "config"}`` or a bare encoder state dict) → the
    ``dasheng`` ViT on the ``centred_mel`` frontend."""

    name = "dasheng"
    description = "Dasheng checkpoint (.pt: {'model': encoder state dict, 'config': {...}})"
    reference = "dasheng 0.0.9 (Dasheng.from_pretrained)"
    file_kind = "Dasheng checkpoint file (.pt)"

    def recognises(self, file: Path, names: set[str]) -> bool:
        return MARKERS <= names

    def convert(self, path: Path, out_dir: Path, trust_pickle: bool = False) -> Path:
        file = self.checkpoint(path)
        dump = read_weights(file, trust_pickle)
        has_parts = isinstance(dump, Mapping) and "model" in dump
        state = tensor_dict(dump["model"] if has_parts else dump, str(file))
        state = strip_data_parallel(state)
        raw_config = dump.get("config") if has_parts else None
        config: Mapping[str, Any] = raw_config if isinstance(raw_config, Mapping) else {}
        encoder, frontend = encoder_fields(state, config, str(file))
        weights, dropped = map_weights(state, encoder, frontend, str(file))
        model = ModelConfig(
            encoder="dasheng",
            encoder_config=to_dict(encoder),
            frontend="centred_mel",
            frontend_config=frontend,
            name=file.stem,
            licence="apache-2.0",
            provenance=provenance(
                self,
                file,
                [file],
                "apache-2.0",
                dropped=sorted(dropped),
                config_keys=sorted(str(k) for k in config),
            ),
            embed=embed_defaults(encoder, frontend["hop_length"] / 16000),
        )
        return write_model(model, weights, out_dir)
