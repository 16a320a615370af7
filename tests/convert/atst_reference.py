"""The ATST-Frame reference (avex 1.4.0's ``avex.models.atst_frame.atst_frame``): random
``FrameAST`` models saved as the published files are (Lightning archives) or as avex's
``load_model`` reads them (a bare encoder state dict), and their layers in echoic's convention.

avex pins dozens of packages (cloud storage, pydantic, mlflow …) that its ATST module does not
use: ``make test-converters`` installs avex ``--no-deps`` into ``$ECHOIC_CONVERTER_REFS/avex`` and
only ``atst_frame.py`` is imported — its package ``__init__`` files (the model registry, cloud
I/O) are not run. Its module-level imports are answered by the real packages where they install
(torch, numpy, einops, pytorch_lightning — imported first, before the torchvision stand-in is on
the path — and torchaudio from ``$ECHOIC_CONVERTER_REFS``), by the torchvision stand-in
(``stubs/``: ``transforms.Compose``) and, for ``avex.utils.universal_torch_load`` (a cloud-aware
``torch.load``), by ``torch.load`` itself.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from types import ModuleType
from typing import Any

import pytest
import torch
from spectrogram_reference import REFS, STUBS, isolated_import, perturb

AVEX = REFS / "avex" / "avex"
MODULE = "avex.models.atst_frame.atst_frame"
ATST_TINY: dict[str, Any] = {
    "embed_dim": 128,
    "depth": 3,
    "num_heads": 2,
    "qkv_bias": False,
    "patch_h": 64,
    "patch_w": 4,
}
"""A tiny FrameAST with the published layout (64 × 4 patches, 251-row table) and head width (64:
the checkpoints do not store the heads, which are ``dim / 64``)."""


def atst_module() -> ModuleType:
    """avex's ``atst_frame`` module (``FrameAST``, ``FrameAST_small``, ``load_model``)."""
    if MODULE in sys.modules:
        return sys.modules[MODULE]
    if not (AVEX / "models" / "atst_frame" / "atst_frame.py").is_file():
        reason = f"converter reference 'avex' not installed in {REFS / 'avex'}; make test-converters installs it"
        if os.environ.get("ECHOIC_REQUIRE_CONVERTERS") == "1":
            pytest.fail(f"ECHOIC_REQUIRE_CONVERTERS=1 but {reason}")
        pytest.skip(reason)
    import pytorch_lightning  # noqa: F401  (the real one, before the torchvision stand-in)

    # the avex packages as bare namespaces over the installed files: their __init__ not run
    for name in ("avex", "avex.models", "avex.models.atst_frame"):
        package = ModuleType(name)
        package.__path__ = [str(AVEX.joinpath(*name.split(".")[1:]))]
        sys.modules.setdefault(name, package)
    utils = ModuleType("avex.utils")
    utils.universal_torch_load = torch.load  # type: ignore[attr-defined]
    sys.modules.setdefault("avex.utils", utils)
    return isolated_import([MODULE], [REFS, STUBS], "avex")[0]


def make_atst(module: ModuleType, seed: int = 0, **fields: Any) -> Any:
    """A tiny random ``FrameAST`` (every parameter perturbed), in eval mode."""
    torch.manual_seed(seed)
    norm = partial(torch.nn.LayerNorm, eps=1e-6)
    return perturb(module.FrameAST(**{**ATST_TINY, "norm_layer": norm, **fields}), seed + 1)


def lightning_archive(teacher: torch.nn.Module, seed: int = 0) -> dict[str, Any]:
    """What ``FrameATSTLightningModule``'s checkpoints hold: the teacher's encoder, a different
    student, projectors and the student's predictor, plus Lightning's bookkeeping."""
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for key, value in teacher.state_dict().items():
        state[f"model.teacher.encoder.{key}"] = value
        state[f"model.student.encoder.{key}"] = value + torch.randn(
            value.shape, generator=generator
        )
    dim = int(teacher.embed_dim)
    for role in ("teacher.projector", "student.projector", "student.predictor"):
        state[f"model.{role}.0.weight"] = torch.randn(32, dim, generator=generator)
        state[f"model.{role}.1.running_mean"] = torch.zeros(32)
    return {
        "epoch": 3,
        "global_step": 1200,
        "pytorch-lightning_version": "1.6.5",
        "state_dict": state,
        "hyper_parameters": {"arch": "small", "pos_type": "cut", "avg_blocks": 0, "nprompt": 0},
    }


def atst_layers(model: Any, mel: torch.Tensor) -> list[torch.Tensor]:
    """The reference's layers in echoic's convention: the input of the first block, each block's
    output, then ``get_intermediate_layers(n=1, scene=False)`` (``norm_frame`` of the last
    block). ``mel``: ``(B, 1, 64, T)``, what its ``transform`` gives."""
    seen: list[torch.Tensor] = []
    hooks = [model.blocks[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0]))]
    hooks += [b.register_forward_hook(lambda _m, _a, out: seen.append(out)) for b in model.blocks]
    length = torch.full((mel.shape[0],), mel.shape[-1])
    try:
        with torch.no_grad():
            final = model.get_intermediate_layers(mel, length, n=1, scene=False)
    finally:
        for hook in hooks:
            hook.remove()
    return [*seen[:-1], final]
