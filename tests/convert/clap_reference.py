"""The CLAP 2022 audio-tower reference (msclap 1.3.4's ``AudioEncoder`` with PANNs' Cnn14 and its
torchlibrosa 0.1.0 frontend): random models saved as ``CLAP_weights_2022.pth`` is
(``{"model": CLAP state dict}``), and every block's output.

msclap pins transformers < 5 and more for its text tower; only ``msclap.models`` is imported (its
``clap`` module imports ``transformers.AutoModel``, which transformers 5 has). msclap and
torchlibrosa live in ``$ECHOIC_CONVERTER_REFS/clap`` (``--no-deps``), on the path only while
importing; torchlibrosa builds its filters with librosa (a test-only install).

Cnn14's widths are fixed in msclap's code (64 … 2048 channels, 64 mel bins), so the reference is
the published size with random weights. Its batch-norm statistics are measured on the real clips
(passes in training mode) and then perturbed, so that activations stay near unit scale through
the twelve convolutions (as a trained model's do) and a swapped statistic shows.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import torch
from spectrogram_reference import REFS, isolated_import

CLAP_2022: dict[str, Any] = {
    "audioenc_name": "Cnn14",
    "d_in": 2048,
    "d_out": 1024,
    "sample_rate": 44100,
    "window_size": 1024,
    "hop_size": 320,
    "mel_bins": 64,
    "fmin": 50,
    "fmax": 14000,
    "classes_num": 527,
}
"""msclap's ``AudioEncoder`` as ``CLAP`` builds it from config_2022.yml."""
FROZEN = ("spectrogram_extractor", "logmel_extractor")


def msclap_modules() -> ModuleType:
    """``msclap.models.clap`` (``AudioEncoder``)."""
    return isolated_import(["msclap.models.clap"], [REFS, REFS / "clap"], "msclap")[0]


def make_audio_encoder(module: ModuleType, calibrate: list[np.ndarray], seed: int = 0) -> Any:
    """A random CLAP 2022 ``AudioEncoder`` in eval mode: every trained parameter perturbed (the
    frozen STFT kernels and mel filters kept: they are the frontend), then the batch-norm
    statistics measured on the ``calibrate`` clips (44.1 kHz) and perturbed too."""
    torch.manual_seed(seed)
    model = module.AudioEncoder(**CLAP_2022)
    generator = torch.Generator().manual_seed(seed + 1)

    def perturb(values: list[tuple[str, torch.Tensor]]) -> None:
        for name, value in values:
            if name.startswith(tuple(f"base.{f}" for f in FROZEN)) or not value.is_floating_point():
                continue
            spread = float(value.std()) if value.numel() > 1 else 0.0
            noise = torch.randn(value.shape, generator=generator) * 0.1 * (spread or 1.0)
            value.add_(noise.abs() if name.endswith("running_var") else noise)

    with torch.no_grad():
        perturb(list(model.named_parameters()))
        for norm in model.modules():
            if isinstance(norm, torch.nn.BatchNorm2d):
                norm.momentum = None  # a cumulative average over the calibration passes
        model.train()
        for clip in calibrate:
            model.base(torch.from_numpy(clip)[None])
        model.eval()
        perturb([(n, b) for n, b in model.named_buffers() if "running" in n])
    return model


def clap_checkpoint(audio_encoder: Any) -> dict[str, Any]:
    """``{"model": …}`` as msclap saves a CLAP: the audio tower next to a (token) text tower."""
    state = {f"audio_encoder.{k}": v for k, v in audio_encoder.state_dict().items()}
    state["caption_encoder.projection.linear1.weight"] = torch.zeros(4, 4)
    state["logit_scale"] = torch.tensor(2.66)
    return {"model": state}


def cnn14_trace(base: Any, wave: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``(log-mel features (B, 64, T), [block 1 … 6 outputs, block 6's first convolution after
    its norm and ReLU])`` of msclap's Cnn14 on ``wave (B, S)``."""
    seen: list[torch.Tensor] = []
    blocks = [getattr(base, f"conv_block{k}") for k in range(1, 7)]
    hooks = [b.register_forward_hook(lambda _m, _a, out: seen.append(out)) for b in blocks]
    hooks.append(
        blocks[-1].bn1.register_forward_hook(lambda _m, _a, out: seen.append(torch.relu(out)))
    )
    try:
        with torch.no_grad():
            mel = base.logmel_extractor(base.spectrogram_extractor(wave))  # (B, 1, T, 64)
            base(wave)
    finally:
        for hook in hooks:
            hook.remove()
    first = seen.pop(5)  # block 6's bn1 fires before block 6 returns
    return mel[:, 0].transpose(1, 2), [*seen, first]
