"""The BEATs reference: ESPnet's ``BeatsEncoder`` (unilm's BEATs code, adapted), tiny random
models saved in BEATs' public layout, and their layers in echoic's convention.

ESPnet's module imports ``torchaudio.compliance.kaldi`` (its frontend) and ``typeguard``. Neither
belongs in the test environment: torchaudio's compiled parts do not load beside the CPU torch here,
and typeguard installs a pytest plugin. ``make test-converters`` therefore puts both in a separate
folder (``$ECHOIC_CONVERTER_REFS``, default ``.venv/converter-refs``; torchaudio ``--no-deps`` with
its ``lib/*.so`` deleted, which leaves the pure-Python Kaldi fbank working); they are importable
only while the reference module itself is imported, and removed from ``sys.modules`` after (the
module keeps its own references), so no other test sees them.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
REFS = Path(os.environ.get("ECHOIC_CONVERTER_REFS") or REPO / ".venv" / "converter-refs")
ISOLATED = ("torchaudio", "typeguard")

TINY: dict[str, Any] = {
    "encoder_layers": 3,
    "encoder_embed_dim": 64,
    "encoder_ffn_embed_dim": 128,
    "encoder_attention_heads": 4,
    "embed_dim": 48,
    "input_patch_size": 16,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "conv_bias": False,
    "deep_norm": True,
    "layer_norm_first": False,
    "relative_position_embedding": True,
    "num_buckets": 320,
    "max_distance": 800,
    "gru_rel_pos": True,
    "activation_fn": "gelu",
    "dropout": 0.0,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "encoder_layerdrop": 0.0,
    "dropout_input": 0.0,
    "layer_wise_gradient_decay_ratio": 1.0,
    "finetuned_model": False,
}
"""A tiny BEATs with the published structure: 16×16 patches into a 48-wide embedding projected to
64, 128-tap positions in 16 groups, DeepNorm post-LN blocks, query-gated bias (320 / 800)."""
CASES: dict[str, dict[str, Any]] = {
    "beats": TINY,
    # pre-LN blocks, ungated bias, a patch bias and no projection (embed_dim == width)
    "beats-prenorm": {
        **TINY,
        "deep_norm": False,
        "layer_norm_first": True,
        "gru_rel_pos": False,
        "conv_bias": True,
        "embed_dim": 64,
    },
}


def require(module: str) -> ModuleType:
    """Import a reference module; skip without it, or fail under ECHOIC_REQUIRE_CONVERTERS=1."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        reason = (
            f"converter reference {module!r} not importable ({err}); make test-converters "
            f"installs it (espnet in the venv, torchaudio + typeguard in {REFS})"
        )
        if os.environ.get("ECHOIC_REQUIRE_CONVERTERS") == "1":
            pytest.fail(f"ECHOIC_REQUIRE_CONVERTERS=1 but {reason}")
        pytest.skip(reason)


def beats_module() -> ModuleType:
    """``espnet2.asr.encoder.beats_encoder``, imported with the isolated packages on the path."""
    if "espnet2.asr.encoder.beats_encoder" in sys.modules:
        return sys.modules["espnet2.asr.encoder.beats_encoder"]
    require("espnet")
    sys.path.insert(0, str(REFS))
    try:
        return require("espnet2.asr.encoder.beats_encoder")
    finally:
        sys.path.remove(str(REFS))
        for name in [m for m in sys.modules if m.split(".")[0] in ISOLATED]:
            del sys.modules[name]


def make_beats(module: ModuleType, case: str, seed: int = 0) -> Any:
    """ESPnet's ``BeatsEncoder`` of ``case`` with random weights (every parameter perturbed, so a
    swapped norm or a dropped bias shows), in eval mode."""
    torch.manual_seed(seed)
    model = module.BeatsEncoder(input_size=1, beats_config=dict(CASES[case]))
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for parameter in model.parameters():
            spread = float(parameter.std()) if parameter.numel() > 1 else 0.0
            noise = torch.randn(parameter.shape, generator=generator)
            parameter.add_(noise * 0.1 * (spread if spread > 0 else 1.0))
    return model.eval()


def save_beats(model: Any, case: str, path: Path) -> Path:
    """Save as unilm's ``BEATs_iter*.pt``: ``{"cfg": dict, "model": state_dict}``."""
    torch.save({"cfg": dict(CASES[case]), "model": model.state_dict()}, path)
    return path


def beats_layers(model: Any, wave: torch.Tensor) -> list[torch.Tensor]:
    """The reference's layers on one clip ``(S,)`` in echoic's convention: the input of the first
    block (after positions and, post-LN, the encoder LayerNorm), each block's output, the last
    after the final LayerNorm when pre-LN. Read with hooks around ``extract_features``."""
    seen: list[torch.Tensor] = []
    layers = model.encoder.layers
    hooks = [layers[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0]))]
    hooks += [
        layer.register_forward_hook(lambda _m, _a, out: seen.append(out[0])) for layer in layers
    ]
    try:
        with torch.no_grad():
            final, _ = model.extract_features(wave[None])
    finally:
        for hook in hooks:
            hook.remove()
    found = [x.transpose(0, 1) for x in seen]  # (T, B, C) → (B, T, C)
    return [*found[:-1], final]
