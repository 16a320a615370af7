"""References for the spectrogram transformers (AST, SSAST, Dasheng): tiny random models saved in
their public on-disk formats, their layers in echoic's convention, and isolated imports.

- transformers' ``ASTModel`` (the venv's transformers): ``save_pretrained`` folders;
- the AST / SSAST code as s3prl 0.4.18 ships it (``s3prl.upstream.ssast.ast_models``,
  ``s3prl.upstream.ast.ast_models``), which asserts timm 0.4.5 and imports torchaudio's Kaldi
  fbank; ``nn.DataParallel`` state dicts as the repositories save them;
- dasheng 0.0.9 (``Dasheng.from_pretrained`` reads ``{"model", "config"}``), which imports
  torchaudio's transforms.

timm 0.4.5 (``$ECHOIC_CONVERTER_REFS/timm-0.4.5``), torchaudio (``$ECHOIC_CONVERTER_REFS``, pure
Python: its ``lib/*.so`` deleted) and a stand-in torchvision (``stubs/``: timm 0.4.5 imports it for
image helpers only) are importable only while a reference module is imported, then removed from
``sys.modules`` (the reference keeps its own references) and any other versions another test had
imported put back, so no other test sees them.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
REFS = Path(os.environ.get("ECHOIC_CONVERTER_REFS") or REPO / ".venv" / "converter-refs")
STUBS = Path(__file__).resolve().parent / "stubs"
ISOLATED = ("torchaudio", "timm", "torchvision")

AST_TINY: dict[str, Any] = {
    "hidden_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "intermediate_size": 128,
}
"""A tiny transformers AST with the published geometry (16 × 16 patches, strides 10, 128 bins)."""
DASHENG_TINY: dict[str, Any] = {"embed_dim": 64, "depth": 3, "num_heads": 4, "target_length": 1008}
"""A tiny Dasheng with the published layout (64 mels, 64 × 4 patches, 252-step time table)."""


def isolated_import(modules: list[str], paths: list[Path], package: str) -> list[ModuleType]:
    """Import ``modules`` in one session with ``paths`` first on ``sys.path`` (modules that share
    the isolated packages must be imported together); skip when ``package`` (or what it needs) is
    missing, fail instead under ``ECHOIC_REQUIRE_CONVERTERS=1``. The isolated packages are dropped
    from ``sys.modules`` afterwards."""
    if all(m in sys.modules for m in modules):
        return [sys.modules[m] for m in modules]
    # another test may have imported other versions of these (a newer timm): set them aside
    aside = {name: sys.modules.pop(name) for name in list(sys.modules) if _isolated(name)}
    added = [str(p) for p in paths]
    sys.path[:0] = added
    try:
        return [importlib.import_module(m) for m in modules]
    except (ImportError, AssertionError) as err:  # s3prl asserts timm's version
        reason = (
            f"converter reference {package!r} not importable ({type(err).__name__}: {err}); "
            f"make test-converters installs it (the package in the venv, torchaudio and timm "
            f"0.4.5 in {REFS})"
        )
        if os.environ.get("ECHOIC_REQUIRE_CONVERTERS") == "1":
            pytest.fail(f"ECHOIC_REQUIRE_CONVERTERS=1 but {reason}")
        pytest.skip(reason)
    finally:
        for path in added:
            sys.path.remove(path)
        for name in [m for m in sys.modules if _isolated(m)]:
            del sys.modules[name]
        sys.modules.update(aside)


def _isolated(module: str) -> bool:
    return module.split(".")[0] in ISOLATED


def dasheng_module() -> ModuleType:
    """``dasheng.pretrained.pretrained`` (``Dasheng``), torchaudio isolated."""
    return isolated_import(["dasheng.pretrained.pretrained"], [REFS], "dasheng")[0]


def ast_feature_extractor() -> tuple[type, str]:
    """transformers' ``ASTFeatureExtractor`` and which fbank it computes. Its module imports
    torchaudio's Kaldi fbank when transformers found torchaudio importable (which depends on
    whether another reference had it on the path when transformers looked), else it uses its own
    numpy fbank: imported here with torchaudio reachable, so that either way the import works."""
    module = "transformers.models.audio_spectrogram_transformer.feature_extraction_audio_spectrogram_transformer"
    found = isolated_import([module], [REFS], "transformers")[0]
    path = "extractor: torchaudio" if hasattr(found, "ta_kaldi") else "extractor: numpy"
    return found.ASTFeatureExtractor, path


def s3prl_modules() -> list[ModuleType]:
    """s3prl's SSAST ``ast_models``, its ``audio`` (the Kaldi fbank features) and AST's
    ``ast_models``; timm 0.4.5, torchaudio and the torchvision stand-in isolated."""
    modules = [
        "s3prl.upstream.ssast.ast_models",
        "s3prl.upstream.ssast.audio",
        "s3prl.upstream.ast.ast_models",
    ]
    return isolated_import(modules, [REFS, REFS / "timm-0.4.5", STUBS], "s3prl")


def perturb(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Every float parameter moved by 10 % of its spread (LayerNorms start at 1 / 0 and biases at
    0, which would hide a swapped norm or a dropped bias); returns the model in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.is_floating_point():
                continue
            spread = float(parameter.std()) if parameter.numel() > 1 else 0.0
            noise = torch.randn(parameter.shape, generator=generator)
            parameter.add_(noise * 0.1 * (spread if spread > 0 else 1.0))
    return model.eval()


def hooked_layers(
    blocks: torch.nn.ModuleList | torch.nn.Sequential, run: Callable[[], torch.Tensor]
) -> list[torch.Tensor]:
    """The reference's layers in echoic's convention: the input of the first block, each block's
    output, then what ``run()`` returns (after the final norm) instead of the last block's."""
    seen: list[torch.Tensor] = []
    hooks = [blocks[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0]))]
    hooks += [block.register_forward_hook(lambda _m, _a, out: seen.append(out)) for block in blocks]
    try:
        with torch.no_grad():
            final = run()
    finally:
        for hook in hooks:
            hook.remove()
    return [*seen[:-1], final]


def make_dasheng(module: ModuleType, seed: int = 0, **fields: Any) -> Any:
    """A tiny random ``Dasheng`` (its input BatchNorm statistics random too), in eval mode."""
    torch.manual_seed(seed)
    model = module.Dasheng(**{**DASHENG_TINY, **fields})
    perturb(model, seed + 1)
    generator = torch.Generator().manual_seed(seed + 2)
    norm = model.init_bn[1]
    with torch.no_grad():  # dB values: means around -30, spreads of 7 … 16 dB
        norm.running_mean.copy_(torch.randn(norm.num_features, generator=generator) * 10 - 30)
        norm.running_var.copy_(torch.rand(norm.num_features, generator=generator) * 200 + 50)
    return model.eval()


def make_hf_ast(transformers: ModuleType, max_length: int, seed: int = 0, **fields: Any) -> Any:
    """A tiny random transformers ``ASTModel`` for inputs of ``max_length`` frames."""
    config = transformers.ASTConfig(**{**AST_TINY, "max_length": max_length, **fields})
    torch.manual_seed(seed)
    return perturb(transformers.ASTModel(config), seed + 1)


def hf_ast_layers(model: Any, input_values: torch.Tensor) -> list[torch.Tensor]:
    """transformers' hidden states in echoic's convention, summary tokens included (the last is
    ``last_hidden_state``, after the final LayerNorm)."""
    with torch.no_grad():
        out = model(input_values, output_hidden_states=True)
    return [*out.hidden_states[:-1], out.last_hidden_state]
