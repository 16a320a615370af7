"""The waveform "frontend" (registered as ``"waveform"``): samples as one-bin frames.

For encoders that read the waveform themselves (wav2vec2-style CNN feature encoders): frame ``i``
is sample ``i`` (window 1, hop 1), so ``Features.values`` is ``(B, 1, S)`` for mono audio and
``(B, C, 1, S)`` for ``C > 1`` channels, with ``lengths`` in samples, ``hop_s = 1 / sample_rate``
and ``first_centre_s = 0``. Normalisation is ``(x - mean) / std`` over the whole batch's values,
or, with ``per_item=True``, each item to zero mean and unit variance over its valid samples (the
``do_normalize`` of wav2vec2's large models). Samples beyond an item's length are exactly 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from echoic.errors import ConfigError
from echoic.features.base import FRONTENDS, Frontend
from echoic.types import AudioBatch, Features

__all__ = ["WaveformConfig", "WaveformFrontend"]


@dataclass
class WaveformConfig:
    """Settings of :class:`WaveformFrontend`."""

    sample_rate: int = 16000
    mean: float = 0.0
    std: float = 1.0
    per_item: bool = False
    channels: int = 1

    def __post_init__(self) -> None:
        if int(self.sample_rate) <= 0:
            raise ConfigError(f"WaveformConfig.sample_rate must be > 0; found {self.sample_rate}.")
        if int(self.channels) < 1:
            raise ConfigError(f"WaveformConfig.channels must be >= 1; found {self.channels}.")


class WaveformFrontend(Frontend):
    """``AudioBatch`` ``(B, S)`` / ``(B, C, S)`` → ``Features`` ``(B, 1, S)`` / ``(B, C, 1, S)``."""

    name = "waveform"
    output_kind = "waveform"

    @property
    def n_bins(self) -> int:
        return 1

    @property
    def win_length(self) -> int:
        return 1

    @property
    def hop_length(self) -> int:
        return 1

    @property
    def first_centre_s(self) -> float:
        return 0.0

    def forward(self, batch: AudioBatch) -> Features:
        if batch.sample_rate != self.sample_rate:
            raise ValueError(
                f"waveform frontend expects audio at {self.sample_rate} Hz; found "
                f"{batch.sample_rate} Hz. Resample when loading, e.g. "
                f"echoic.data.load_audio(path, sample_rate={self.sample_rate})."
            )
        wave = batch.waveform
        if wave.is_complex() or not wave.is_floating_point():
            raise ValueError(
                f"AudioBatch.waveform must be a real float tensor in [-1, 1]; found {wave.dtype}."
            )
        wave = wave.to(torch.float32)
        if wave.ndim == 3 and wave.shape[1] == 1:
            wave = wave[:, 0]
        channels = 1 if wave.ndim == 2 else int(wave.shape[1])
        if channels != int(self.config.channels):
            raise ValueError(
                f"waveform frontend configured for {self.config.channels} channel(s); found "
                f"{channels} (waveform shape {tuple(batch.waveform.shape)}). Load with "
                f"mono={self.config.channels == 1} or set frontend_config channels={channels}."
            )
        lengths = batch.lengths.to(wave.device)
        valid = torch.arange(wave.shape[-1], device=wave.device)[None, :] < lengths[:, None]
        if wave.ndim == 3:
            valid = valid[:, None, :]
        if self.config.per_item:
            count = valid.sum(dim=-1, keepdim=True).clamp_min(1)
            mean = (wave * valid).sum(dim=-1, keepdim=True) / count
            var = (((wave - mean) * valid) ** 2).sum(dim=-1, keepdim=True) / count
            wave = (wave - mean) / (var + 1e-7).sqrt()
        else:
            offset, scale = float(self.config.mean), float(self.config.std)
            if offset != 0.0 or scale != 1.0:
                wave = (wave - offset) / scale
        values = torch.where(valid, wave, torch.zeros((), dtype=wave.dtype, device=wave.device))
        values = values.unsqueeze(-2)  # one bin: (B, 1, S) or (B, C, 1, S)
        return Features(values, lengths, self.hop_s, self.first_centre_s)


FRONTENDS.register("waveform", (WaveformConfig, WaveformFrontend))
