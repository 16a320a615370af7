"""A constant-Q transform (CQT) as a fixed bank of complex convolution kernels.

Bin ``k`` is centred at ``f_k = fmin · 2^(k / bins_per_octave)`` (default: 84 bins, 12 per octave
from C1 = 32.70 Hz, i.e. C1 … B7) and is the inner product of the signal with a Hann-windowed
complex exponential at ``f_k`` of ``L_k = Q · sample_rate / f_k`` samples, ``Q = filter_scale /
α``, where ``α = (2^(2/B) − 1) / (2^(2/B) + 1)`` is the bins' relative bandwidth (librosa ≥ 0.10's
definition; the classic ``1 / (2^(1/B) − 1)`` differs by 3 %). Kernels are L1-normalised, so a
sinusoid of amplitude ``A`` at a bin's frequency gives ``A / 2`` in that bin whatever its length
(nnAudio's ``norm=1``, MERT's CQT targets); ``length_scaling=True`` multiplies bin ``k`` by
``√L_k`` (librosa's ``scale=True``). Frame ``t`` is centred on sample ``first_centre + t · hop``
(zeros beyond the signal), and the output is the magnitude.

Computed directly in the time domain (no multirate decimation, unlike librosa): one strided
``conv1d`` per octave, each with kernels as long as that octave's longest, so the cost per frame
is about ``4 · L_0 · bins_per_octave`` multiply-adds (``L_0``: the lowest bin's length; 12.7 k
samples at 24 kHz) rather than ``2 · L_0 · n_bins`` for one padded bank. Agrees with
``librosa.cqt`` to about 1 % (``tests/objectives/test_objectives_mert.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from echoic.errors import ConfigError

__all__ = ["ConstantQ", "ConstantQConfig", "cqt_frequencies"]

C1_HZ = 440.0 * 2.0 ** ((24 - 69) / 12)  # MIDI note 24: 32.703 Hz


@dataclass(frozen=True)
class ConstantQConfig:
    """Settings of :class:`ConstantQ` (defaults: MERT's 84 bins, 12 per octave, from C1)."""

    sample_rate: int = 24000
    hop_length: int = 320
    fmin: float = C1_HZ
    n_bins: int = 84
    bins_per_octave: int = 12
    filter_scale: float = 1.0
    length_scaling: bool = False

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.hop_length < 1 or self.fmin <= 0:
            raise ConfigError(
                "ConstantQ needs sample_rate > 0, hop_length >= 1 and fmin > 0; found "
                f"{self.sample_rate}, {self.hop_length}, {self.fmin}."
            )
        if self.n_bins < 1 or self.bins_per_octave < 1 or self.filter_scale <= 0:
            raise ConfigError(
                "ConstantQ needs n_bins >= 1, bins_per_octave >= 1 and filter_scale > 0; found "
                f"{self.n_bins}, {self.bins_per_octave}, {self.filter_scale}."
            )
        top = float(cqt_frequencies(self)[-1])
        # the top bin's main lobe (Hann: ± 2 bins of its length) must stay below Nyquist
        edge = top * (1.0 + 2.0 / self.quality)
        if edge >= self.sample_rate / 2:
            raise ConfigError(
                f"ConstantQ: the top bin ({top:.0f} Hz, band edge {edge:.0f} Hz) reaches past the "
                f"Nyquist frequency of {self.sample_rate} Hz audio; use fewer bins, a lower fmin "
                "or a higher sample rate."
            )

    @property
    def quality(self) -> float:
        """``Q``: centre frequency over bandwidth."""
        ratio = 2.0 ** (2.0 / self.bins_per_octave)
        return self.filter_scale * (ratio + 1.0) / (ratio - 1.0)


def cqt_frequencies(config: ConstantQConfig) -> torch.Tensor:
    """``(n_bins,)`` float64 centre frequencies in Hz."""
    k = torch.arange(config.n_bins, dtype=torch.float64)
    return config.fmin * torch.pow(2.0, k / config.bins_per_octave)


def _kernels(config: ConstantQConfig) -> list[torch.Tensor]:
    """One ``(2 · n, 1, L)`` float32 conv weight per octave: real parts of its ``n`` bins, then
    imaginary parts, each kernel centred in the octave's (odd) length ``L``."""
    freqs = cqt_frequencies(config)
    lengths = config.quality * config.sample_rate / freqs
    groups = []
    for start in range(0, config.n_bins, config.bins_per_octave):
        stop = min(start + config.bins_per_octave, config.n_bins)
        half = math.ceil(float(lengths[start]) / 2)
        width = 2 * half + 1
        real = torch.zeros(stop - start, width, dtype=torch.float64)
        imag = torch.zeros_like(real)
        for row, k in enumerate(range(start, stop)):
            n = max(1, round(float(lengths[k])))
            t = torch.arange(n, dtype=torch.float64) - (n - 1) / 2  # centred on 0
            window = torch.hann_window(n + 2, periodic=False, dtype=torch.float64)[1:-1]
            phase = 2.0 * math.pi * float(freqs[k]) * t / config.sample_rate
            gain = 1.0 / window.sum()
            if config.length_scaling:
                gain = gain * math.sqrt(float(lengths[k]))
            offset = half - (n - 1) // 2
            real[row, offset : offset + n] = window * torch.cos(phase) * gain
            imag[row, offset : offset + n] = window * torch.sin(phase) * gain
        groups.append(torch.cat([real, imag]).unsqueeze(1).float())
    return groups


class ConstantQ(nn.Module):
    """Waveform ``(B, S)`` → CQT magnitude ``(B, n_bins, n_frames)`` (module docstring). The
    kernels are fixed buffers, not saved in a ``state_dict`` (they follow from the config)."""

    def __init__(self, config: ConstantQConfig | None = None) -> None:
        super().__init__()
        self.config = config or ConstantQConfig()
        self.n_groups = 0
        for index, weight in enumerate(_kernels(self.config)):
            self.register_buffer(f"kernel_{index}", weight, persistent=False)
            self.n_groups += 1

    def kernel(self, index: int) -> torch.Tensor:
        weight = getattr(self, f"kernel_{index}")
        assert isinstance(weight, torch.Tensor)
        return weight

    @property
    def max_half(self) -> int:
        return (self.kernel(0).shape[-1] - 1) // 2

    def forward(
        self, waveform: torch.Tensor, n_frames: int | None = None, first_centre: int = 0
    ) -> torch.Tensor:
        """Magnitudes of frames centred on samples ``first_centre + t · hop_length``, ``t < n_frames``
        (default ``1 + S // hop_length``, librosa's ``center=True`` count)."""
        if waveform.ndim != 2:
            raise ConfigError(
                f"ConstantQ expects a mono waveform (B, S); found {tuple(waveform.shape)}."
            )
        hop = self.config.hop_length
        samples = int(waveform.shape[-1])
        frames = 1 + samples // hop if n_frames is None else int(n_frames)
        if frames < 1 or first_centre < 0:
            raise ConfigError(
                f"need n_frames >= 1 and first_centre >= 0; found {frames}, {first_centre}."
            )
        pad = self.max_half
        right = max(0, first_centre + (frames - 1) * hop + pad + 1 - samples)
        padded = nn.functional.pad(waveform.float(), (pad, right))[:, None]
        parts = []
        for index in range(self.n_groups):
            weight = self.kernel(index)
            half = (weight.shape[-1] - 1) // 2
            start = first_centre + pad - half
            stop = start + (frames - 1) * hop + weight.shape[-1]
            response = nn.functional.conv1d(padded[..., start:stop], weight, stride=hop)
            real, imag = response.chunk(2, dim=1)
            parts.append(torch.sqrt(real.square() + imag.square()))
        return torch.cat(parts, dim=1)
