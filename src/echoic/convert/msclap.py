"""Microsoft CLAP (msclap) checkpoints → the ``cnn14`` encoder on the ``centred_mel`` frontend
(format ``msclap``): the audio tower of CLAP 2022.

``CLAP_weights_2022.pth`` (msclap's ``version="2022"``) is ``torch.save({"model": state_dict})`` of
the whole CLAP: ``audio_encoder.base.*`` (PANNs' Cnn14 with its torchlibrosa frontend),
``audio_encoder.projection.*``, ``caption_encoder.*`` (BERT) and ``logit_scale``. Mapping onto
:class:`~echoic.encoders.cnn14.Cnn14Encoder`:

- ``base.bn0`` (``BatchNorm2d`` over the 64 mel bins) → ``input_norm``;
- ``base.conv_block{k}.{conv1,bn1,conv2,bn2}`` → ``blocks.{k-1}.*`` (same names);
- ``base.spectrogram_extractor`` / ``base.logmel_extractor`` (torchlibrosa's STFT as convolution
  kernels and the mel filters, frozen parameters) → the ``centred_mel`` frontend with CLAP 2022's
  settings (44.1 kHz, 1024-point centred STFT every 320 samples, 64 Slaney mel bins 50 Hz –
  14 kHz, ``10 log10(max(x, 1e-10))``, no ``top_db``); the stored filters are checked against the
  frontend's and dropped;
- the clip-level heads — ``base.fc1`` (after max + mean pooling over time), ``base.fc_audioset``,
  ``audio_encoder.projection`` — and the text tower are dropped (listed in ``provenance``).

The 2023 checkpoints (HTSAT audio tower, ``audio_encoder.base.htsat.*``) are refused:
docs/converting.md says why HTSAT is not an echoic family yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from echoic.checkpoint import ModelConfig
from echoic.config import to_dict
from echoic.convert.base import (
    CheckpointFileConverter,
    ConversionError,
    StateReader,
    model_state,
    provenance,
    read_weights,
    write_model,
)
from echoic.convert.registry import register
from echoic.encoders.cnn14 import Cnn14Config
from echoic.features.base import build_frontend
from echoic.features.centred_mel import CentredMelFrontend

__all__ = ["MSCLAP_FRONTEND", "MSClap", "map_weights"]

BASE = "audio_encoder.base."
MSCLAP_FRONTEND: dict[str, Any] = {
    "sample_rate": 44100,
    "n_fft": 1024,
    "hop_length": 320,
    "n_mels": 64,
    "f_min": 50.0,
    "f_max": 14000.0,
    "mel_scale": "slaney",
    "mel_norm": "slaney",
    "top_db": None,
}
"""CLAP 2022's Cnn14 frontend (config_2022.yml: torchlibrosa ``Spectrogram`` + ``LogmelFilterBank``)
as a ``centred_mel`` config."""
DROPPED = (
    r"audio_encoder\.(projection\..*|base\.(fc1|fc_audioset|spectrogram_extractor|"
    r"logmel_extractor)\..*)|caption_encoder\..*|logit_scale|audio_encoder\.base\.bn0\.num_batches_tracked"
)
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def map_weights(
    state: dict[str, torch.Tensor], where: str
) -> tuple[Cnn14Config, dict[str, torch.Tensor], list[str]]:
    """``(config, echoic weights, dropped names)`` of a msclap Cnn14 state dict."""
    if any(k.startswith(BASE + "htsat.") for k in state):
        raise ConversionError(
            f"{where}: a CLAP checkpoint with an HTSAT audio tower (msclap 2023 / clapcap); echoic "
            "converts the Cnn14 tower of CLAP 2022 only (docs/converting.md: why HTSAT waits)."
        )
    src = StateReader(state, where)
    n_blocks = len({k.split(".")[2] for k in state if k.startswith(BASE + "conv_block")})
    if n_blocks < 1 or BASE + "bn0.running_mean" not in src:
        raise ConversionError(f"{where}: no {BASE}conv_block* / bn0: not msclap's Cnn14.")
    channels = tuple(
        int(state[f"{BASE}conv_block{k}.conv1.weight"].shape[0]) for k in range(1, n_blocks + 1)
    )
    config = Cnn14Config(channels=channels, n_bins=int(state[BASE + "bn0.running_mean"].shape[0]))
    out = {f"input_norm.{p}": src.take(f"{BASE}bn0.{p}") for p in BN[:4]}
    for k in range(n_blocks):
        stem = f"{BASE}conv_block{k + 1}"
        for conv in ("conv1", "conv2"):
            out[f"blocks.{k}.{conv}.weight"] = src.take(f"{stem}.{conv}.weight")
        for norm in ("bn1", "bn2"):
            for p in BN:
                out[f"blocks.{k}.{norm}.{p}"] = src.take(f"{stem}.{norm}.{p}")
    check_filters(src, where)
    src.drop(DROPPED)
    src.finish()
    return config, out, src.dropped


def check_filters(src: StateReader, where: str) -> None:
    """Refuse a checkpoint whose stored mel filters are not CLAP 2022's frontend's."""
    stored = src.state.get(BASE + "logmel_extractor.melW")
    if stored is None:
        return
    frontend = build_frontend("centred_mel", MSCLAP_FRONTEND)
    assert isinstance(frontend, CentredMelFrontend)
    ours = frontend.mel_bank
    if stored.shape != ours.shape or float((stored - ours).abs().max()) > 1e-6:
        raise ConversionError(
            f"{where}: the stored mel filters ({tuple(stored.shape)}) are not CLAP 2022's "
            f"(44.1 kHz, 1024-point FFT, 64 Slaney bins 50 Hz – 14 kHz): another msclap config "
            "echoic does not know."
        )


@register
class MSClap(CheckpointFileConverter):
    """msclap ``.pth`` checkpoints (``{"model": CLAP state dict}``) → the ``cnn14`` encoder."""

    name = "msclap"
    description = "Microsoft CLAP checkpoint (.pth {'model': ...}); the Cnn14 audio tower (2022)"
    reference = "msclap 1.3.4 (AudioEncoder / Cnn14, torchlibrosa 0.1.0 frontend)"
    file_kind = "msclap checkpoint file (.pth)"

    def recognises(self, file: Path, names: set[str]) -> bool:
        audio = any(n.startswith(BASE) or n.startswith("module." + BASE) for n in names)
        return audio and any("caption_encoder." in n for n in names)

    def convert(self, path: Path, out_dir: Path, trust_pickle: bool = False) -> Path:
        file = self.checkpoint(path)
        state = model_state(read_weights(file, trust_pickle), str(file))
        encoder, weights, dropped = map_weights(state, str(file))
        groups = sorted({_group(name) for name in dropped})
        model = ModelConfig(
            encoder="cnn14",
            encoder_config=to_dict(encoder),
            frontend="centred_mel",
            frontend_config=dict(MSCLAP_FRONTEND),
            name=file.stem,
            licence="mit",
            provenance=provenance(self, file, [file], "mit", dropped=groups),
        )
        return write_model(model, weights, out_dir)


def _group(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:3] if name.startswith(BASE) else parts[:2])
