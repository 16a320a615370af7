"""Log-mel spectrogram frontend, batched in torch (registered as ``"logmel"``).

Frame ``i`` covers samples ``[i * hop_length, i * hop_length + win_length)``; it is windowed,
zero-padded on the right to ``n_fft`` samples (the magnitudes equal those of ``torch.stft``'s
centred padding; only the phase differs), transformed with ``rfft``, raised to ``power``, projected
on a triangular mel filter bank and compressed with a logarithm:

- ``log="natural"``: ``ln(mel + log_offset)``
- ``log="log10"``: ``log10(mel + log_offset)``
- ``log="db"``: ``(20 / power) * log10(mel + log_offset)`` (dB whatever the power)

then normalised with ``(x - mean) / std``. With ``channels = C > 1`` the frontend takes ``(B, C, S)``
audio and computes each channel the same way, optionally appending inter-channel level / phase
differences (``interchannel``, see :mod:`echoic.features.interchannel`). The filter bank is built in float64 in the torchaudio /
librosa way (filters are triangles in Hz between mel-spaced edges); ``mel_scale="htk"`` with
``mel_norm=None`` is torchaudio's default, ``mel_scale="slaney", mel_norm="slaney"`` librosa's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from echoic.errors import ConfigError
from echoic.features.base import FRONTENDS, Frontend, check_choice, check_positive
from echoic.features.interchannel import check_channels, pooling_weights

WINDOWS = ("hann", "hamming", "rectangular")
MEL_SCALES = ("htk", "slaney")
MEL_NORMS = (None, "slaney")
LOGS = ("natural", "log10", "db")


@dataclass
class LogMelConfig:
    """Settings of :class:`LogMelFrontend` (windows are periodic, as in torch and librosa).

    channels: audio channels taken (1 = mono ``(B, S)``; ``C > 1``: ``(B, C, S)``).
    interchannel: ``"none"``, ``"ild"``, ``"ipd"`` or ``"ild+ipd"`` features appended for 2+
        channels (:mod:`echoic.features.interchannel`).
    """

    sample_rate: int = 16000
    n_fft: int = 400
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float | None = None
    window: str = "hann"
    power: float = 2.0
    mel_scale: str = "htk"
    mel_norm: str | None = None
    log: str = "natural"
    log_offset: float = 1e-6
    mean: float = 0.0
    std: float = 1.0
    channels: int = 1
    interchannel: str = "none"

    def __post_init__(self) -> None:
        check_channels(self)
        check_choice(self, "window", WINDOWS)
        check_choice(self, "mel_scale", MEL_SCALES)
        check_choice(self, "mel_norm", MEL_NORMS)
        check_choice(self, "log", LOGS)
        check_positive(self, ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels"))
        if self.win_length > self.n_fft:
            raise ConfigError(
                f"LogMelConfig.win_length ({self.win_length}) must be <= n_fft ({self.n_fft}); "
                f"raise n_fft to at least {self.win_length}."
            )
        if self.power <= 0:
            raise ConfigError(
                f"LogMelConfig.power must be > 0 (1 magnitude, 2 power); found {self.power}."
            )
        if self.log_offset <= 0:
            raise ConfigError(
                f"LogMelConfig.log_offset must be > 0 (it keeps log away from 0); found {self.log_offset}."
            )
        nyquist = self.sample_rate / 2
        f_max = nyquist if self.f_max is None else self.f_max
        if not 0.0 <= self.f_min < f_max <= nyquist:
            raise ConfigError(
                f"LogMelConfig needs 0 <= f_min < f_max <= sample_rate / 2 = {nyquist}; found "
                f"f_min={self.f_min}, f_max={self.f_max}. Use f_max=None for the Nyquist frequency."
            )


def hz_to_mel(freq: torch.Tensor, mel_scale: str = "htk") -> torch.Tensor:
    """Hertz → mel (``"htk"``: 2595 log10(1 + f / 700); ``"slaney"``: linear below 1 kHz, then log)."""
    if mel_scale == "htk":
        return 2595.0 * torch.log10(1.0 + freq / 700.0)
    linear = freq / (200.0 / 3)
    log_part = 15.0 + torch.log(freq.clamp_min(1000.0) / 1000.0) / (math.log(6.4) / 27.0)
    return torch.where(freq >= 1000.0, log_part, linear)


def mel_to_hz(mel: torch.Tensor, mel_scale: str = "htk") -> torch.Tensor:
    """Mel → hertz, the inverse of :func:`hz_to_mel`."""
    if mel_scale == "htk":
        return 700.0 * (torch.pow(10.0, mel / 2595.0) - 1.0)
    linear = mel * (200.0 / 3)
    log_part = 1000.0 * torch.exp((mel.clamp_min(15.0) - 15.0) * (math.log(6.4) / 27.0))
    return torch.where(mel >= 15.0, log_part, linear)


def mel_filter_bank(
    n_freqs: int,
    n_mels: int,
    sample_rate: int,
    f_min: float = 0.0,
    f_max: float | None = None,
    mel_scale: str = "htk",
    mel_norm: str | None = None,
) -> torch.Tensor:
    """``(n_freqs, n_mels)`` float32 triangular filters over ``n_freqs`` bins spanning 0 … sr/2.

    Filter ``m`` rises from edge ``m`` to edge ``m + 1`` and falls to edge ``m + 2``, the
    ``n_mels + 2`` edges being equally spaced in mel between ``f_min`` and ``f_max``.
    ``mel_norm="slaney"`` scales each filter by ``2 / (upper edge - lower edge)`` (equal area).
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    dtype = torch.float64
    bin_freqs = torch.linspace(0.0, sample_rate / 2, n_freqs, dtype=dtype)
    edges_mel = torch.linspace(
        float(hz_to_mel(torch.tensor(f_min, dtype=dtype), mel_scale)),
        float(hz_to_mel(torch.tensor(f_max, dtype=dtype), mel_scale)),
        n_mels + 2,
        dtype=dtype,
    )
    edges = mel_to_hz(edges_mel, mel_scale)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_freqs[:, None] - lower[None, :]) / (centre - lower)[None, :]
    falling = (upper[None, :] - bin_freqs[:, None]) / (upper - centre)[None, :]
    bank = torch.minimum(rising, falling).clamp_min(0.0)
    if mel_norm == "slaney":
        bank = bank * (2.0 / (upper - lower))[None, :]
    return bank.to(torch.float32)


def analysis_window(name: str, length: int) -> torch.Tensor:
    """``(length,)`` float32 periodic window (``"hann"``, ``"hamming"``) or ones (``"rectangular"``)."""
    if name == "hann":
        window = torch.hann_window(length, periodic=True, dtype=torch.float64)
    elif name == "hamming":
        window = torch.hamming_window(length, periodic=True, dtype=torch.float64)
    else:
        window = torch.ones(length, dtype=torch.float64)
    return window.to(torch.float32)


class LogMelFrontend(Frontend):
    """Log-mel spectrogram: ``(B, S)`` audio → ``(B, n_mels, T)`` normalised log mel energies
    (``(B, C, S)`` → ``(B, out_channels, n_mels, T)`` with ``channels = C > 1``)."""

    name = "logmel"

    def __init__(self, config: LogMelConfig) -> None:
        super().__init__(config)
        self.config: LogMelConfig = config
        self.window: torch.Tensor
        self.mel_bank: torch.Tensor
        self.register_buffer("window", analysis_window(config.window, config.win_length), False)
        bank = mel_filter_bank(
            config.n_fft // 2 + 1,
            config.n_mels,
            config.sample_rate,
            config.f_min,
            config.f_max,
            config.mel_scale,
            config.mel_norm,
        )
        self.register_buffer("mel_bank", bank, False)

    @property
    def n_bins(self) -> int:
        return int(self.config.n_mels)

    @property
    def win_length(self) -> int:
        return int(self.config.win_length)

    @property
    def hop_length(self) -> int:
        return int(self.config.hop_length)

    def complex_spectrum(self, waveform: torch.Tensor, n_frames: int) -> torch.Tensor:
        """``(B, S)`` → ``(B, n_frames, n_fft // 2 + 1)`` complex spectra of the windowed frames."""
        frames = waveform.unfold(-1, self.win_length, self.hop_length)[:, :n_frames]
        return torch.fft.rfft(frames * self.window, n=self.config.n_fft)

    def phase_pooling(self) -> torch.Tensor:
        """``(n_fft // 2 + 1, n_mels)`` mel filters scaled to sum to 1 each."""
        return pooling_weights(self.mel_bank)

    def mel_energies(self, waveform: torch.Tensor, n_frames: int) -> torch.Tensor:
        """``(B, S)`` → ``(B, n_mels, n_frames)`` mel energies (before the log)."""
        spectrum = self.complex_spectrum(waveform, n_frames)
        if self.config.power == 2.0:
            spectrum = spectrum.real.square().add_(spectrum.imag.square())
        elif self.config.power == 1.0:
            spectrum = spectrum.abs()
        else:
            spectrum = spectrum.abs().pow_(self.config.power)
        # (F, K) @ (B, K, T) → (B, F, T), contiguous without a transpose copy.
        return torch.matmul(self.mel_bank.T, spectrum.transpose(1, 2))

    def compute(self, waveform: torch.Tensor, n_frames: int) -> torch.Tensor:
        """``(B, S)`` → ``(B, n_mels, n_frames)`` log mel energies (not yet normalised)."""
        mel = self.mel_energies(waveform, n_frames).add_(self.config.log_offset)
        if self.config.log == "natural":
            return mel.log_()
        if self.config.log == "log10":
            return mel.log10_()
        return mel.log10_().mul_(20.0 / self.config.power)


FRONTENDS.register("logmel", (LogMelConfig, LogMelFrontend))
