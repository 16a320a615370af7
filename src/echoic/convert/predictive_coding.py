"""s3prl's APC and NPC checkpoints → the ``apc`` / ``npc`` encoders (formats ``apc``, ``npc``).

The s3prl ``apc`` / ``vq_apc`` and ``npc`` upstreams read one ``.ckpt``: ``{"config": {"data":
{"audio": {...}}, "model": {"paras": {...}}}, "model": state dict, …}`` (the original repositories'
layout; s3prl's own pretraining adds ``Optimizer``, ``Args``, …, which are ignored).

Features (``config.data.audio``, s3prl's ``create_transform``): ``feat_type`` (fbank),
``feat_dim`` (the mel bins), ``cmvn`` (default True) and ``decode_wav`` are read; every other key is
passed to ``torchaudio.compliance.kaldi.fbank`` beside ``window_type="hamming"``, and is mapped
onto the ``kaldi_fbank`` frontend from torchaudio's defaults (``energy_floor`` 1, ``low_freq``
20, pre-emphasis 0.97, …). CMVN is per utterance (``cmvn: true``). ``dither`` makes the reference
random; echoic computes without it (recorded in ``provenance.dither``). Options the frontend does
not implement (``subtract_mean``, VTLN, ``snip_edges: false``) are refused.

Weights: APC's ``rnn_layers.{i}`` (``nn.GRU``) → ``grus.{i}``; NPC's ``blocks.{i}`` (conv,
linear, bn1, bn2) → ``blocks.{i}`` and ``masked_convs.{i}.conv`` → ``masked.{j}.conv`` (the
stored ``conv_mask`` is checked against the one the sizes give, then dropped). Prediction heads
(``postnet``) and VQ layers (``vq_layers``: VQ-APC, VQ-NPC; the hidden states s3prl returns are
taken before them) are dropped. NPC's linear bottleneck (``dim_bottleneck``) is refused.
"""

from __future__ import annotations

import re
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
    tensor_dict,
    write_model,
)
from echoic.convert.registry import register
from echoic.convert.s3prl_states import read_states, section
from echoic.encoders.apc import APCConfig
from echoic.encoders.npc import NPCConfig, masked_taps

__all__ = ["APC", "NPC", "kaldi_frontend"]

KALDI_DEFAULTS: dict[str, Any] = {
    "blackman_coeff": 0.42,
    "energy_floor": 1.0,
    "frame_length": 25.0,
    "frame_shift": 10.0,
    "high_freq": 0.0,
    "htk_compat": False,
    "low_freq": 20.0,
    "preemphasis_coefficient": 0.97,
    "raw_energy": True,
    "remove_dc_offset": True,
    "round_to_power_of_two": True,
    "use_energy": False,
    "use_log_fbank": True,
    "use_power": True,
}
"""``torchaudio.compliance.kaldi.fbank``'s defaults for the options echoic maps."""
RENAMED = {
    "frame_length": "frame_length_ms",
    "frame_shift": "frame_shift_ms",
    "preemphasis_coefficient": "preemphasis",
}
HARMLESS = {
    "channel": (-1, 0),
    "min_duration": (0.0,),
    "snip_edges": (True,),
    "subtract_mean": (False,),
}
"""Options accepted only at these values (what echoic computes)."""


def kaldi_frontend(audio: dict[str, Any], where: str) -> tuple[dict[str, Any], float]:
    """``(kaldi_fbank config, dither)`` of an APC / NPC ``data.audio`` config."""
    audio = dict(audio)
    kind = audio.pop("feat_type", "fbank")
    if kind != "fbank":
        raise ConversionError(f"{where}: feat_type {kind!r}; the reference only reads 'fbank'.")
    n_mels = int(audio.pop("feat_dim"))
    cmvn = bool(audio.pop("cmvn", True))
    audio.pop("decode_wav", None)
    dither = float(audio.pop("dither", 0.0))
    for key, allowed in HARMLESS.items():
        if key in audio and audio.pop(key) not in allowed:
            raise ConversionError(f"{where}: audio.{key} must be one of {allowed} for echoic.")
    if float(audio.pop("vtln_warp", 1.0)) != 1.0:
        raise ConversionError(f"{where}: VTLN warping (audio.vtln_warp) is not implemented.")
    unknown = sorted(set(audio) - set(KALDI_DEFAULTS) - {"vtln_low", "vtln_high"})
    if unknown:
        raise ConversionError(
            f"{where}: audio options {unknown} are not Kaldi fbank options echoic maps."
        )
    options = {**KALDI_DEFAULTS, **{k: v for k, v in audio.items() if k in KALDI_DEFAULTS}}
    config = {RENAMED.get(k, k): v for k, v in options.items()}
    config.update(sample_rate=16000, window="hamming", n_mels=n_mels, cmvn=cmvn, cmvn_eps=1e-10)
    return config, dither


def _model_config(states: dict[str, Any], where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(data.audio, model.paras)`` of the checkpoint's ``config``."""
    config = section(states.get("config"), f"{where}: config")
    audio = section(
        section(config.get("data"), f"{where}: config.data").get("audio"), f"{where}: audio"
    )
    paras = section(
        section(config.get("model"), f"{where}: config.model").get("paras"), f"{where}: paras"
    )
    return audio, paras


class _S3prlConverter(CheckpointFileConverter):
    """The shared reading of APC / NPC checkpoints; subclasses map the weights."""

    markers: frozenset[str] = frozenset()
    family = ""

    def recognises(self, file: Path, names: set[str]) -> bool:
        return self.markers <= names

    def encoder(
        self, paras: dict[str, Any], n_bins: int, state: dict[str, torch.Tensor], where: str
    ) -> tuple[APCConfig | NPCConfig, dict[str, torch.Tensor], list[str]]:
        raise NotImplementedError

    def convert(self, path: Path, out_dir: Path, trust_pickle: bool = False) -> Path:
        file = self.checkpoint(path)
        where = str(file)
        states = read_states(file, trust_pickle)
        audio, paras = _model_config(states, where)
        frontend, dither = kaldi_frontend(audio, where)
        state = tensor_dict(states.get("model"), f"{where}: model")
        encoder, weights, dropped = self.encoder(paras, int(frontend["n_mels"]), state, where)
        config = ModelConfig(
            encoder=self.family,
            encoder_config=to_dict(encoder),
            frontend="kaldi_fbank",
            frontend_config=frontend,
            name=file.stem,
            licence="unknown",
            provenance=provenance(
                self,
                file,
                [file],
                "unknown",
                dropped=sorted(dropped),
                ignored=sorted(str(k) for k in states if k != "model"),
                dither=dither,
            ),
        )
        return write_model(config, weights, out_dir)


@register
class APC(_S3prlConverter):
    """s3prl APC / VQ-APC checkpoints → the ``apc`` encoder on ``kaldi_fbank`` with CMVN."""

    name = "apc"
    description = "s3prl APC / VQ-APC checkpoint (.ckpt: {'config', 'model': rnn_layers.*})"
    reference = "s3prl 0.4.18 (upstream/apc)"
    markers = frozenset({"config", "model", "rnn_layers.0.weight_ih_l0"})
    family = "apc"
    file_kind = "APC checkpoint file"

    def encoder(
        self, paras: dict[str, Any], n_bins: int, state: dict[str, torch.Tensor], where: str
    ) -> tuple[APCConfig, dict[str, torch.Tensor], list[str]]:
        layers = int(paras["num_layers"])
        config = APCConfig(
            dim=int(paras["hidden_size"]),
            depth=layers - 1,
            n_bins=n_bins,
            residual=bool(paras.get("residual", False)),
        )
        src = StateReader(state, where)
        out = {}
        for i in range(layers):
            for p in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
                out[f"grus.{i}.{p}"] = src.take(f"rnn_layers.{i}.{p}")
        src.drop(r"(postnet|vq_layers)\..*")
        src.finish()
        return config, out, src.dropped


@register
class NPC(_S3prlConverter):
    """s3prl NPC checkpoints → the ``npc`` encoder on ``kaldi_fbank`` with CMVN."""

    name = "npc"
    description = "s3prl NPC checkpoint (.ckpt: {'config', 'model': blocks.*, masked_convs.*})"
    reference = "s3prl 0.4.18 (upstream/npc)"
    markers = frozenset({"config", "model", "blocks.0.linear.weight"})
    family = "npc"
    file_kind = "NPC checkpoint file"

    def recognises(self, file: Path, names: set[str]) -> bool:
        return self.markers <= names and any(n.startswith("masked_convs.") for n in names)

    def encoder(
        self, paras: dict[str, Any], n_bins: int, state: dict[str, torch.Tensor], where: str
    ) -> tuple[NPCConfig, dict[str, torch.Tensor], list[str]]:
        if paras.get("dim_bottleneck") is not None:
            raise ConversionError(
                f"{where}: NPC's linear bottleneck (dim_bottleneck) is not supported."
            )
        config = NPCConfig(
            dim=int(paras["hidden_size"]),
            blocks=int(paras["n_blocks"]),
            n_bins=n_bins,
            kernel_size=int(paras["kernel_size"]),
            mask_size=int(paras["mask_size"]),
            residual=bool(paras["residual"]),
            batch_norm=bool(paras.get("batch_norm", True)),
            activation=str(paras.get("activate", "relu")),
            cross_layer=not bool(paras.get("disable_cross_layer", False)),
        )
        src = StateReader(state, where)
        out: dict[str, torch.Tensor] = {}
        norms = ("bn1", "bn2") if config.batch_norm else ()
        buffers = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
        for i in range(config.blocks):
            for part in ("conv", "linear"):
                for p in ("weight", "bias"):
                    out[f"blocks.{i}.{part}.{p}"] = src.take(f"blocks.{i}.{part}.{p}")
            for part in norms:
                for p in buffers:
                    out[f"blocks.{i}.{part}.{p}"] = src.take(f"blocks.{i}.{part}.{p}")
        first = 0 if config.cross_layer else config.blocks - 1
        for i in range(first, config.blocks):
            for p in ("weight", "bias"):
                out[f"masked.{i - first}.conv.{p}"] = src.take(f"masked_convs.{i}.conv.{p}")
            mask = f"masked_convs.{i}.conv_mask"
            if mask in src:
                taps = masked_taps(config.kernel_size, config.mask_size + 2 * (i + 1))
                expected = taps.expand_as(src.state[mask])
                if not torch.equal(src.state[mask], expected):
                    raise ConversionError(f"{where}: {mask} is not the mask the sizes give.")
                src.drop(re.escape(mask))
        src.drop(r"(postnet|vq_layers)\..*")
        src.finish()
        return config, out, src.dropped
