"""The PaSST reference (hear21passt 0.0.26): tiny random models saved as PaSST's releases are,
its log-mel frontend, its layers in echoic's convention, and real clips at 32 kHz.

hear21passt imports timm (>= 0.4.12, for a download helper only) and torchaudio (its frontend's
Kaldi mel filters and, at construction, the masking transforms); both live outside the venv:
hear21passt and timm 0.4.12 in ``$ECHOIC_CONVERTER_REFS/passt`` (timm 0.4.5, which s3prl's AST
code asserts, sits in its own folder), torchaudio in ``$ECHOIC_CONVERTER_REFS``, timm's
torchvision import answered by the stand-in in ``stubs/`` — on the path only while importing
(``spectrogram_reference.isolated_import``).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import torch
from spectrogram_reference import REFS, STUBS, isolated_import, perturb

PASST_TINY: dict[str, Any] = {
    "embed_dim": 128,
    "depth": 3,
    "num_heads": 2,
    "img_size": (128, 998),
    "stride": 10,
    "distilled": True,
    "num_classes": 7,
}
"""A tiny PaSST with the published geometry (16 × 16 patches every 10, 12 × 99 position tables)
and head width (64: the checkpoints do not store the heads, which are ``dim / 64``)."""
MEL: dict[str, Any] = {
    "n_mels": 128,
    "sr": 32000,
    "win_length": 800,
    "hopsize": 320,
    "n_fft": 1024,
    "freqm": 48,
    "timem": 192,
    "htk": False,
    "fmin": 0.0,
    "fmax": None,
    "norm": 1,
    "fmin_aug_range": 10,
    "fmax_aug_range": 2000,
}
"""``AugmentMelSTFT`` as hear21passt's ``get_basic_model`` builds it (PaSST's training config)."""


def passt_modules() -> tuple[ModuleType, ModuleType]:
    """``hear21passt.models.passt`` (``PaSST``) and ``hear21passt.models.preprocess``
    (``AugmentMelSTFT``), imported with timm 0.4.12, torchaudio and the torchvision stand-in."""
    modules = ["hear21passt.models.passt", "hear21passt.models.preprocess"]
    found = isolated_import(modules, [REFS, REFS / "passt", STUBS], "hear21passt")
    found[0].first_RUN = False  # its first forward prints every shape
    return found[0], found[1]


def make_passt(module: ModuleType, seed: int = 0, **fields: Any) -> Any:
    """A tiny random ``PaSST`` (every parameter perturbed), in eval mode."""
    torch.manual_seed(seed)
    return perturb(module.PaSST(**{**PASST_TINY, **fields}), seed + 1)


def make_mel(module: ModuleType) -> Any:
    return module.AugmentMelSTFT(**MEL).eval()


def passt_layers(model: Any, mel: torch.Tensor) -> list[torch.Tensor]:
    """The reference's layers in echoic's convention, summary tokens included: the input of the
    first block, each block's output, the final norm's output instead of the last block's.
    ``mel``: ``(B, 128, T)`` (AugmentMelSTFT's output)."""
    seen: list[torch.Tensor] = []
    hooks = [model.blocks[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0]))]
    hooks += [b.register_forward_hook(lambda _m, _a, out: seen.append(out)) for b in model.blocks]
    hooks.append(model.norm.register_forward_hook(lambda _m, _a, out: seen.append(out)))
    try:
        with torch.no_grad():
            model(mel[:, None])
    finally:
        for hook in hooks:
            hook.remove()
    return [*seen[:-2], seen[-1]]
