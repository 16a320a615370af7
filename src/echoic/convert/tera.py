"""s3prl's TERA / Mockingjay checkpoints → the ``tera`` / ``mockingjay`` encoder (format ``tera``).

The s3prl ``tera`` and ``mockingjay`` upstreams (``upstream/mockingjay/builder.py``) read one
``states-*.ckpt``: ``{"Transformer": state dict, "SpecHead": state dict, "Config" /
"Upstream_Config": {"transformer": …, "audio": …, "task": …}, "Optimizer", "Step", "Args", …}``
— the upstream config sits under ``Config`` in legacy files and under ``Upstream_Config`` in newer
ones (where ``Config`` is the runner's). Only ``Transformer`` and the config are read; the
prediction head (``SpecHead``) and the training state are dropped.

Features (``audio``): the published ``logMel`` checkpoints use s3prl's ``OnlinePreprocessor``:
each utterance scaled to ``target_level`` dB RMS (-25), a centred STFT (reflection at its ends,
periodic Hann of ``win_ms``, ``n_fft = (n_freq - 1) · 2``, ``hop_ms``), power, torchaudio's HTK mel
filters (0 … Nyquist, no norm), ``log(mel + eps)`` (1e-10), per-utterance CMVN ``(x - mean) / (std
+ eps)``: the ``centred_mel`` frontend with ``target_level_db``, ``log_offset`` and ``cmvn``
(tested against s3prl's extractor). Refused, with the reason: inputs other than log-mel (linear,
MFCC, phase), deltas, and the Kaldi-extracter checkpoints (``audio.kaldi``: fbank + deltas + CMVN,
the ``fbankBase`` models), whose deltas echoic's frontends do not compute.

Weights (``TransformerModel``; legacy ``gamma`` / ``beta`` LayerNorm names read too):
``input_representations.spec_transform`` → ``proj``, ``input_representations.LayerNorm`` →
``input_norm``; per block ``attention.self.{query,key,value}`` → fused ``attn.qkv``,
``attention.output.dense`` → ``attn.proj``, ``attention.output.LayerNorm`` → ``norm1`` (after
attention post-LN, before it pre-LN), ``intermediate.dense`` / ``output.dense`` → ``mlp.fc1`` /
``fc2``, ``output.LayerNorm`` → ``norm2``; pre-LN: ``encoder.LayerNorm.{j}`` → ``output_norms.{j}``
and the blocks' aliases of their two norms (``attention.LayerNorm``, ``LayerNorm``) are dropped
after checking that they are the same tensors.

Family: ``tera`` when the pretraining task alters frequencies or magnitudes (``mask_frequency`` or
``noise_proportion`` > 0), else ``mockingjay``; the networks are the same.
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
    fuse_qkv,
    provenance,
    tensor_dict,
    write_model,
)
from echoic.convert.registry import register
from echoic.convert.s3prl_states import read_states, section
from echoic.encoders.tera import TeraConfig

__all__ = ["Tera", "encoder_fields", "frontend_fields", "map_weights"]

MARKERS = {"Transformer", "input_representations.spec_transform.weight"}
"""Names every TERA / Mockingjay checkpoint's pickle holds."""
PREFIX = "encoder.layer"


def upstream_config(states: dict[str, Any], where: str) -> dict[str, Any]:
    """The upstream config: ``Config`` (legacy) or ``Upstream_Config`` (newer), as s3prl picks."""
    for key in ("Config", "Upstream_Config"):
        value = states.get(key)
        if isinstance(value, dict) and "transformer" in value:
            return value
    raise ConversionError(f"{where}: no Config / Upstream_Config with a 'transformer' section.")


def frontend_fields(audio: dict[str, Any], where: str) -> dict[str, Any]:
    """The ``centred_mel`` config of s3prl's ``OnlinePreprocessor`` settings (``audio``)."""
    if "kaldi" in audio:
        raise ConversionError(
            f"{where}: this checkpoint's features come from s3prl's Kaldi extracter (fbank + "
            "deltas + CMVN, the fbankBase models); echoic's frontends compute no deltas yet."
        )
    feat = section(audio.get("input", {}), f"{where}: audio.input")
    kind, log, delta = (
        feat.get("feat_type"),
        bool(feat.get("log", False)),
        int(feat.get("delta", 0)),
    )
    if kind != "mel" or not log or delta:
        raise ConversionError(
            f"{where}: input features {kind!r} (log={log}, delta={delta}); echoic reads the "
            "log-mel ones (feat_type mel, log True, delta 0) of the published checkpoints."
        )
    rate = int(audio.get("sample_rate", 16000))
    win = round(float(audio.get("win_ms", 25)) * rate / 1000)
    hop = round(float(audio.get("hop_ms", 10)) * rate / 1000)
    n_fft = (int(audio.get("n_freq", 201)) - 1) * 2
    if win != n_fft:
        raise ConversionError(
            f"{where}: a {win}-sample window in a {n_fft}-point FFT; echoic's centred_mel takes "
            "windows of the FFT's length (win_ms · rate / 1000 = (n_freq - 1) · 2)."
        )
    eps = float(audio.get("eps", 1e-10))
    level = audio.get("target_level")
    return {
        "sample_rate": rate,
        "n_fft": n_fft,
        "hop_length": hop,
        "n_mels": int(audio.get("n_mels", 40)),
        "f_min": 0.0,
        "f_max": rate / 2,
        "log": "natural",
        "log_offset": eps,
        "log_floor": min(eps, 1e-10),
        "top_db": None,
        "target_level_db": None if level in (None, "None") else float(level),
        "cmvn": bool(feat.get("cmvn", False)),
        "cmvn_eps": eps,
    }


def encoder_fields(config: dict[str, Any], n_bins: int, where: str) -> tuple[str, TeraConfig]:
    """``(family, TeraConfig)`` of an upstream config's ``transformer`` and ``task`` sections."""
    net = section(config["transformer"], f"{where}: transformer")
    task = section(config.get("task", {}), f"{where}: task")
    encoder = TeraConfig(
        dim=int(net["hidden_size"]),
        depth=int(net["num_hidden_layers"]),
        heads=int(net["num_attention_heads"]),
        n_bins=n_bins,
        mlp_dim=int(net["intermediate_size"]),
        norm_eps=float(net.get("layer_norm_eps", 1e-12)),
        pre_norm=bool(net.get("pre_layer_norm", False)),
        activation=str(net.get("hidden_act", "gelu")),
    )
    altered = any(float(task.get(k) or 0) > 0 for k in ("mask_frequency", "noise_proportion"))
    return ("tera" if altered else "mockingjay"), encoder


def _legacy_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """LayerNorm ``gamma`` / ``beta`` renamed ``weight`` / ``bias`` (as s3prl's loader does)."""
    out = {}
    for key, value in state.items():
        head, _, last = key.rpartition(".")
        last = {"gamma": "weight", "beta": "bias"}.get(last, last) if "LayerNorm" in head else last
        out[f"{head}.{last}" if head else last] = value
    return out


def map_weights(
    state: dict[str, torch.Tensor], config: TeraConfig, where: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Echoic TERA weights from a ``TransformerModel`` state dict."""
    src = StateReader(_legacy_names(state), where)

    def pair(name: str) -> dict[str, torch.Tensor]:
        return {p: src.take(f"{name}.{p}") for p in ("weight", "bias")}

    out: dict[str, torch.Tensor] = {}

    def put(target: str, name: str) -> None:
        for p, value in pair(name).items():
            out[f"{target}.{p}"] = value

    put("proj", "input_representations.spec_transform")
    put("input_norm", "input_representations.LayerNorm")
    for i in range(config.depth):
        layer, block = f"{PREFIX}.{i}", f"blocks.{i}"
        q, k, v = (pair(f"{layer}.attention.self.{n}") for n in ("query", "key", "value"))
        fused = fuse_qkv(*((t["weight"], t["bias"]) for t in (q, k, v)))
        out.update({f"{block}.attn.qkv.{p}": value for p, value in fused.items()})
        put(f"{block}.attn.proj", f"{layer}.attention.output.dense")
        put(f"{block}.norm1", f"{layer}.attention.output.LayerNorm")
        put(f"{block}.mlp.fc1", f"{layer}.intermediate.dense")
        put(f"{block}.mlp.fc2", f"{layer}.output.dense")
        put(f"{block}.norm2", f"{layer}.output.LayerNorm")
        if config.pre_norm:  # the same modules under a second name: checked, then dropped
            for alias, name in (("attention.LayerNorm", "attention.output.LayerNorm"),
                                ("LayerNorm", "output.LayerNorm")):  # fmt: skip
                for p in ("weight", "bias"):
                    first, second = f"{layer}.{alias}.{p}", f"{layer}.{name}.{p}"
                    if first in src and not torch.equal(src.state[first], src.state[second]):
                        raise ConversionError(f"{where}: {first} differs from {second}.")
                    src.drop(re.escape(first))
    if config.pre_norm:
        for j in range(config.depth + 1):
            put(f"output_norms.{j}", f"encoder.LayerNorm.{j}")
    src.finish()
    return out, src.dropped


@register
class Tera(CheckpointFileConverter):
    """s3prl TERA / Mockingjay ``states-*.ckpt`` → the ``tera`` / ``mockingjay`` encoder on the
    ``centred_mel`` frontend (their preprocessor's log-mel with per-utterance CMVN)."""

    name = "tera"
    description = (
        "s3prl TERA / Mockingjay checkpoint (states-*.ckpt: {'Transformer': state dict, "
        "'Config' / 'Upstream_Config': {'transformer', 'audio', 'task'}, ...})"
    )
    reference = "s3prl 0.4.18 (upstream/mockingjay, upstream/tera)"
    file_kind = "TERA / Mockingjay checkpoint file (.ckpt)"

    def recognises(self, file: Path, names: set[str]) -> bool:
        return MARKERS <= names

    def convert(self, path: Path, out_dir: Path, trust_pickle: bool = False) -> Path:
        file = self.checkpoint(path)
        where = str(file)
        states = read_states(file, trust_pickle)
        config = upstream_config(states, where)
        frontend = frontend_fields(section(config.get("audio", {}), f"{where}: audio"), where)
        state = tensor_dict(states.get("Transformer"), f"{where}: Transformer")
        n_bins = int(state["input_representations.spec_transform.weight"].shape[1])
        if n_bins != frontend["n_mels"]:
            raise ConversionError(
                f"{where}: the input projection reads {n_bins} values per frame; the audio config "
                f"gives {frontend['n_mels']} mel bins."
            )
        family, encoder = encoder_fields(config, n_bins, where)
        weights, dropped = map_weights(state, encoder, where)
        task = section(config.get("task", {}), f"{where}: task")
        frames = int(task.get("sequence_length") or 0)  # s3prl splits longer input
        chunk = frames * frontend["hop_length"] / frontend["sample_rate"]
        embed = (
            {"chunk_s": chunk} if chunk > 2 * 2.56 else {"chunk_s": chunk, "overlap_s": chunk / 4}
        )
        model = ModelConfig(
            encoder=family,
            encoder_config=to_dict(encoder),
            frontend="centred_mel",
            frontend_config=frontend,
            name=file.stem,
            licence="unknown",
            provenance=provenance(
                self,
                file,
                [file],
                "unknown",
                dropped=sorted(dropped),
                ignored=sorted(str(k) for k in states if k != "Transformer"),
                sequence_length=frames,
            ),
            embed=embed if frames > 0 else {},
        )
        return write_model(model, weights, out_dir)
