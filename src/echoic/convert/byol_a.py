"""BYOL-A v1 weights → the ``byol_a`` encoder (format ``byol-a``).

The s3prl ``byol_a`` upstream loads ``AudioNTT2020`` weights the way nttcslab/byol-a's
``load_weight`` does: ``torch.load(file)`` (``["state_dict"]`` when there is one), and for each key
the part from its first ``fc.`` / ``features.`` on (so ``model.features.0.weight`` →
``features.0.weight``); keys with neither are skipped. The published
``AudioNTT2020-BYOLA-64x96d{512,1024,2048}.pth`` are plain state dicts of that shape. Mapping:
``features.{0,4,8}`` (``Conv2d``) → ``convs.{0,1,2}``, ``features.{1,5,9}`` (``BatchNorm2d``) →
``norms.{0,1,2}``, ``fc.0`` / ``fc.3`` → ``fc1`` / ``fc2``. Two keys that strip to one name are
refused (s3prl would keep whichever comes last).

The file holds no features settings: they are the constants of s3prl's ``byol_a/config.yaml``
and ``expert.py`` (the BYOL-A repository's): torchaudio ``MelSpectrogram(16 kHz, n_fft 1024,
win 1024, hop 160, 64 mels, 60–7800 Hz)``, ``log(mel + float32 eps)``, then ``(x - (-5.4919195)) /
5.0389895`` — s3prl's fixed statistics (its ``FIXME``: the paper normalises with each downstream
dataset's own). → ``centred_mel`` with ``log_offset`` and that ``mean`` / ``std``. The converted
model asks the Embedder for BYOL-A's clip embedding, the temporal mean + max of the frames
(``embed.scene_pool = "mean+max"``). s3prl cuts input into 1-s windows (every 1 s, the last one
zero-padded) and returns one such vector per window; echoic returns the frames (one per 80 ms)
and pools whole clips as the paper does.
"""

from __future__ import annotations

import re
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
    tensor_dict,
    write_model,
)
from echoic.convert.pickle_scan import holds_suffixes
from echoic.convert.registry import register
from echoic.encoders.byol_a import STAGES, BYOLAConfig

__all__ = ["BYOLA", "BYOLA_FRONTEND", "strip_prefixes"]

BYOLA_FRONTEND: dict[str, Any] = {
    "sample_rate": 16000,
    "n_fft": 1024,
    "hop_length": 160,
    "n_mels": 64,
    "f_min": 60.0,
    "f_max": 7800.0,
    "log": "natural",
    "log_offset": float(torch.finfo(torch.float32).eps),
    "top_db": None,
    "mean": -5.4919195,
    "std": 5.0389895,
}
"""``centred_mel`` settings of s3prl's BYOL-A features (config.yaml + expert.py)."""
KEY = re.compile(r"(^fc\.|\.fc\.|^features\.|\.features\.)")
SUFFIXES = ("features.0.weight", "features.8.weight", "fc.0.weight", "fc.3.weight")
"""Names (after any prefix) every AudioNTT2020 state dict holds."""
CONVS = (0, 4, 8)
"""``features.{i}`` of the three convolutions; ``i + 1`` is each one's BatchNorm."""


def strip_prefixes(
    state: Mapping[str, torch.Tensor], where: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """``(weights renamed from their first fc. / features., skipped keys)`` as ``load_weight``."""
    out: dict[str, torch.Tensor] = {}
    skipped = []
    for key, value in state.items():
        match = KEY.search(key)
        if match is None:
            skipped.append(key)
            continue
        name = key[match.start() :].lstrip(".")
        if name in out:
            raise ConversionError(f"{where}: two weights are named {name!r} after their prefixes.")
        out[name] = value
    return out, skipped


def map_weights(
    state: dict[str, torch.Tensor], where: str
) -> tuple[BYOLAConfig, dict[str, torch.Tensor], list[str]]:
    """``(config, echoic weights, dropped)`` of an AudioNTT2020 state dict (prefixes stripped)."""
    if "fc.0.weight" not in state or "features.0.weight" not in state:
        raise ConversionError(f"{where}: no features.0.weight / fc.0.weight: not AudioNTT2020.")
    channels = int(state["features.0.weight"].shape[0])
    dim, flat = (int(n) for n in state["fc.0.weight"].shape)
    if flat % channels:
        raise ConversionError(
            f"{where}: fc.0 reads {flat} values, not a multiple of {channels} maps."
        )
    config = BYOLAConfig(dim=dim, n_bins=(flat // channels) * 2**STAGES, channels=channels)
    src = StateReader(state, where)
    out: dict[str, torch.Tensor] = {}
    for stage, index in enumerate(CONVS):
        for p in ("weight", "bias"):
            out[f"convs.{stage}.{p}"] = src.take(f"features.{index}.{p}")
        for p in ("weight", "bias", "running_mean", "running_var"):
            out[f"norms.{stage}.{p}"] = src.take(f"features.{index + 1}.{p}")
        tracked = f"features.{index + 1}.num_batches_tracked"  # absent from pre-0.4.1 files
        count = src.take(tracked) if tracked in src else torch.tensor(0)
        out[f"norms.{stage}.num_batches_tracked"] = count
    for target, index in (("fc1", 0), ("fc2", 3)):
        for p in ("weight", "bias"):
            out[f"{target}.{p}"] = src.take(f"fc.{index}.{p}")
    src.finish()
    return config, out, src.dropped


@register
class BYOLA(CheckpointFileConverter):
    """BYOL-A v1 ``.pth`` (AudioNTT2020 state dict) → the ``byol_a`` encoder on ``centred_mel``."""

    name = "byol-a"
    description = "BYOL-A v1 weights (.pth: AudioNTT2020 state dict, features.*, fc.*)"
    reference = "s3prl 0.4.18 (upstream/byol_a, from nttcslab/byol-a)"
    file_kind = "BYOL-A weights file (.pth)"

    def recognises(self, file: Path, names: set[str]) -> bool:
        return holds_suffixes(names, SUFFIXES)

    def convert(self, path: Path, out_dir: Path, trust_pickle: bool = False) -> Path:
        file = self.checkpoint(path)
        where = str(file)
        loaded = read_weights(file, trust_pickle)
        if isinstance(loaded, Mapping) and "state_dict" in loaded:
            loaded = loaded["state_dict"]
        state, skipped = strip_prefixes(tensor_dict(loaded, where), where)
        encoder, weights, _ = map_weights(state, where)
        config = ModelConfig(
            encoder="byol_a",
            encoder_config=to_dict(encoder),
            frontend="centred_mel",
            frontend_config={**BYOLA_FRONTEND, "n_mels": encoder.n_bins},
            name=file.stem,
            licence="unknown",
            provenance=provenance(self, file, [file], "unknown", dropped=sorted(skipped)),
            embed={"scene_pool": "mean+max"},
        )
        return write_model(config, weights, out_dir)
