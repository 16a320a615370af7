"""The s3prl 0.4.18 references for TERA / Mockingjay, APC / VQ-APC, NPC and BYOL-A: tiny random
models built with s3prl's own classes, saved in the layout each upstream expert loads, the experts
themselves, and their features and hidden states.

s3prl's upstreams import torchaudio (``mockingjay/builder.py``, ``apc/audio.py``, ``npc/audio.py``,
``byol_a/expert.py``), which only loads here as the pure-Python copy in ``$ECHOIC_CONVERTER_REFS``
(``make test-converters``): it is importable only while these modules are imported
(:func:`spectrogram_reference.isolated_import`), so no other test sees it.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import types
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from spectrogram_reference import REFS, isolated_import, perturb

MODULES = {
    "mockingjay": "s3prl.upstream.mockingjay.expert",
    "transformer": "s3prl.upstream.mockingjay.model",
    "optimizers": "s3prl.optimizers",
    "apc": "s3prl.upstream.apc.expert",
    "apc_model": "s3prl.upstream.apc.apc",
    "npc": "s3prl.upstream.npc.expert",
    "npc_model": "s3prl.upstream.npc.npc",
    "byol_a": "s3prl.upstream.byol_a.expert",
    "byol_a_model": "s3prl.upstream.byol_a.byol_a",
}

TERA_NET: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "share_layer": False,
    "pre_layer_norm": False,
}
"""A tiny transformer of the published layout (post-LN, GELU, 80 log-mel bins in)."""
TERA_AUDIO: dict[str, Any] = {
    "target_level": -25,
    "win_ms": 25,
    "hop_ms": 10,
    "n_freq": 201,
    "n_mels": 80,
    "n_mfcc": 13,
    "input": {"feat_type": "mel", "channel": 0, "log": True, "delta": 0, "cmvn": True},
    "target": {"feat_type": "linear", "channel": 1, "log": True, "delta": 0, "cmvn": True},
}
"""The published logMel checkpoints' preprocessor settings (s3prl's pretrain/tera configs)."""
TERA_CASES: dict[str, dict[str, Any]] = {
    # TERA: newer layout (Upstream_Config), schedule pickled as s3prl.optimizers.*
    "tera": {"net": {}, "task": {"sequence_length": 1500, "mask_frequency": 0.2}, "legacy": False},
    # Mockingjay: legacy layout (upstream config under Config, LayerNorm gamma / beta, the
    # schedule pickled as optimizers.*), pre-LN with per-layer output norms, ReLU
    "mockingjay-preln": {
        "net": {"pre_layer_norm": True, "hidden_act": "relu"},
        "task": {"sequence_length": 500, "mask_frequency": 0},
        "legacy": True,
    },
}
KALDI_AUDIO: dict[str, Any] = {
    "feat_type": "fbank",
    "feat_dim": 80,
    "frame_length": 25,
    "frame_shift": 10,
    "dither": 0,
    "cmvn": True,
}
"""APC / NPC features: 80-bin Kaldi fbank (Hamming), per-utterance CMVN."""
APC_CASES: dict[str, dict[str, Any]] = {
    "apc": {"hidden_size": 32, "num_layers": 3, "dropout": 0.1, "residual": True},
    "vq-apc": {
        "hidden_size": 32,
        "num_layers": 3,
        "dropout": 0.1,
        "residual": True,
        "vq": {"codebook_size": [16, 16], "code_dim": [16, 16], "gumbel_temperature": 0.5},
    },
}
NPC_CASES: dict[str, dict[str, Any]] = {
    "npc": {
        "hidden_size": 32,
        "n_blocks": 3,
        "dropout": 0.1,
        "residual": True,
        "kernel_size": 11,
        "mask_size": 3,
        "batch_norm": True,
        "activate": "relu",
        "disable_cross_layer": False,
    },
    "npc-last": {
        "hidden_size": 32,
        "n_blocks": 3,
        "dropout": 0.1,
        "residual": False,
        "kernel_size": 11,
        "mask_size": 3,
        "batch_norm": False,
        "activate": "tanh",
        "disable_cross_layer": True,
    },
}


def s3prl_upstreams() -> dict[str, ModuleType]:
    """The s3prl modules of :data:`MODULES` (torchaudio isolated)."""
    found = isolated_import(list(MODULES.values()), [REFS], "s3prl")
    return dict(zip(MODULES, found, strict=True))


def randomise_norm_statistics(model: torch.nn.Module, seed: int = 2) -> torch.nn.Module:
    """BatchNorm running statistics away from 0 / 1, so that a dropped buffer shows."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.copy_(torch.randn(buffer.shape, generator=generator) * 0.2)
            elif name.endswith("running_var"):
                buffer.copy_(torch.rand(buffer.shape, generator=generator) + 0.5)
    return model.eval()


def tera_config(case: str) -> dict[str, Any]:
    spec = TERA_CASES[case]
    return {
        "transformer": {**TERA_NET, **spec["net"]},
        "audio": copy.deepcopy(TERA_AUDIO),
        "task": dict(spec["task"]),
    }


def save_tera(s3prl: dict[str, ModuleType], case: str, path: Path, seed: int = 0) -> Path:
    """A random TERA / Mockingjay saved as s3prl's pretraining runner saves it."""
    config = tera_config(case)
    model_module = s3prl["transformer"]
    net = model_module.TransformerConfig(config["transformer"])
    torch.manual_seed(seed)
    model = perturb(model_module.TransformerModel(net, 80), seed + 1)
    head = model_module.TransformerSpecPredictionHead(net, 201)
    optimizer = s3prl["optimizers"].BertAdam(
        list(model.parameters()), lr=2e-4, warmup=0.07, t_total=1000
    )
    states: dict[str, Any] = {
        "SpecHead": head.state_dict(),
        "Transformer": model.state_dict(),
        "Optimizer": optimizer.state_dict(),
        "Step": 1000,
        "Args": argparse.Namespace(upstream="tera", expdir="result/tera", seed=1337),
    }
    if not TERA_CASES[case]["legacy"]:
        states.update(Config={"runner": {"total_steps": 1000}}, Upstream_Config=config)
        torch.save(states, path)
        return path
    states["Config"] = config
    states["Transformer"] = {
        _legacy_name(key): value for key, value in states["Transformer"].items()
    }
    legacy = types.ModuleType("optimizers")  # the module name before s3prl packaged it
    schedule = type("WarmupLinearSchedule", (), {"__module__": "optimizers"})
    legacy.WarmupLinearSchedule = schedule  # type: ignore[attr-defined]
    for group in states["Optimizer"]["param_groups"]:
        old = schedule()
        old.__dict__.update(vars(group["schedule"]))
        group["schedule"] = old
    sys.modules["optimizers"] = legacy
    try:
        torch.save(states, path)
    finally:
        del sys.modules["optimizers"]
    return path


def _legacy_name(key: str) -> str:
    if ".LayerNorm." in key or key.startswith("LayerNorm."):
        return key.replace(".weight", ".gamma").replace(".bias", ".beta")
    return key


def tera_expert(s3prl: dict[str, ModuleType], path: Path) -> Any:
    """s3prl's TERA / Mockingjay ``UpstreamExpert`` on ``path``, in eval mode."""
    return s3prl["mockingjay"].UpstreamExpert(str(path)).eval()


def tera_features(expert: Any, wave: torch.Tensor) -> torch.Tensor:
    """``(T, F)`` the expert's input features of one clip (its level normalisation included)."""
    builder = expert.transformer
    level = builder._normalize_wav_decibel(wave)
    with torch.no_grad():
        return builder.extracter(level[None, None], wavs_len=[len(wave)])[0][0]


def save_predictive(
    s3prl: dict[str, ModuleType], family: str, case: str, path: Path, seed: int = 0
) -> Path:
    """A random APC / NPC saved as its upstream expert loads it: ``{"config", "model"}``."""
    paras = copy.deepcopy((APC_CASES if family == "apc" else NPC_CASES)[case])
    torch.manual_seed(seed)
    if family == "apc":
        model = s3prl["apc_model"].APC(80, **copy.deepcopy(paras))
    else:
        model = s3prl["npc_model"].NPC(80, **copy.deepcopy(paras))
    randomise_norm_statistics(perturb(model, seed + 1), seed + 2)
    config = {"data": {"audio": dict(KALDI_AUDIO)}, "model": {"paras": paras}}
    torch.save({"config": config, "model": model.state_dict(), "step": 1000}, path)
    return path


def predictive_expert(s3prl: dict[str, ModuleType], family: str, path: Path) -> Any:
    return s3prl[family].UpstreamExpert(str(path)).eval()


def save_byol_a(s3prl: dict[str, ModuleType], path: Path, dim: int = 64, seed: int = 0) -> Path:
    """A random ``AudioNTT2020`` state dict, as the BYOL-A repository publishes its weights."""
    torch.manual_seed(seed)
    model = s3prl["byol_a_model"].AudioNTT2020(d=dim)
    randomise_norm_statistics(perturb(model, seed + 1), seed + 2)
    torch.save(model.state_dict(), path)
    return path


def byol_a_expert(s3prl: dict[str, ModuleType], path: Path, dim: int = 64) -> Any:
    """s3prl's BYOL-A ``UpstreamExpert`` (its ``config.yaml``, 1-s windows), in eval mode."""
    module = s3prl["byol_a"]
    config = os.path.join(os.path.dirname(module.__file__), "config.yaml")
    return module.UpstreamExpert(str(path), config, dim).eval()


def byol_a_features(expert: Any, window: torch.Tensor) -> torch.Tensor:
    """``(F, T)`` the expert's normalised log-mel of one window (as its ``forward`` computes it)."""
    with torch.no_grad():
        mel = expert.to_melspec(window)
        return expert.normalizer((mel + torch.finfo(torch.float).eps).log())


def hidden_states(expert: Any, wave: torch.Tensor) -> list[torch.Tensor]:
    """The expert's ``hidden_states`` on one clip, each ``(1, T, D)``."""
    with torch.no_grad():
        return list(expert([wave])["hidden_states"])
