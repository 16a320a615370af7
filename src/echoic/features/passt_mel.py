"""PaSST's log-mel spectrogram (registered as ``"passt_mel"``).

What PaSST's ``AugmentMelSTFT`` (hear21passt ``models/preprocess.py``) computes in evaluation mode,
item by item — the defaults are the published models' settings (32 kHz, 128 bins, 10 ms hop):

1. pre-emphasis over the whole item: ``y[j] = x[j + 1] - 0.97 x[j]`` (a ``conv1d`` with the
   kernel ``[-0.97, 1]`` and no padding: an item of ``n`` samples gives ``n - 1``);
2. ``torch.stft(center=True)``: ``y`` reflected ``n_fft / 2`` samples at both of **its own** ends
   (an item too short to reflect is zero-extended to ``n_fft / 2 + 1`` samples first), frame
   ``i`` centred on ``y[i * hop]``, a **symmetric** Hann window of ``win_length`` samples placed
   in the middle of the ``n_fft``-point frame; ``1 + (n - 1) // hop`` frames;
3. power spectrum → Kaldi's mel filters (``kaldi.get_mel_banks``: triangles in
   ``1127 ln(1 + f / 700)`` between ``f_min`` and ``f_max`` over the ``n_fft / 2`` bins below
   Nyquist, the Nyquist bin unused; built in float32 as torchaudio builds them,
   :func:`float32_kaldi_mel_bank`); the published models use ``f_max = 15000`` — the
   training-time augmentation draws it around ``sr / 2 - fmax_aug_range / 2`` = 15 kHz and
   evaluation takes that centre;
4. ``ln(mel + 1e-5)``, then ``(x + 4.5) / 5`` (``mean = -4.5``, ``std = 5``).

Training-time augmentation (random ``f_min`` / ``f_max``, frequency and time masking) is not
reproduced: it is off at inference.

Frames. The token geometry counts ``1 + (n - win) // hop`` frames; declaring a one-sample window
gives ``1 + (n - 1) // hop``, PaSST's count, with frame 0 centred on sample 0 (it is centred on
``y[0]``, half a sample later: 16 µs at 32 kHz). Mono only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from echoic.errors import ConfigError
from echoic.features.base import FRONTENDS, check_positive
from echoic.features.item_frames import ItemFrontend, reflect_items
from echoic.types import AudioBatch, Features

__all__ = ["PasstMelConfig", "PasstMelFrontend", "float32_kaldi_mel_bank"]


@dataclass
class PasstMelConfig:
    """Settings of :class:`PasstMelFrontend`; the defaults are the published PaSST models'."""

    sample_rate: int = 32000
    n_fft: int = 1024
    win_length: int = 800
    hop_length: int = 320
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float | None = 15000.0
    preemphasis: float = 0.97
    log_offset: float = 1e-5
    mean: float = -4.5
    std: float = 5.0

    def __post_init__(self) -> None:
        check_positive(self, ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels"))
        if self.win_length > self.n_fft:
            raise ConfigError(
                f"PasstMelConfig.win_length ({self.win_length}) must be <= n_fft ({self.n_fft})."
            )
        if self.log_offset <= 0:
            raise ConfigError(f"PasstMelConfig.log_offset must be > 0; found {self.log_offset}.")
        nyquist = self.sample_rate / 2
        f_max = nyquist if self.f_max is None else self.f_max
        if not 0.0 <= self.f_min < f_max <= nyquist:
            raise ConfigError(
                f"PasstMelConfig needs 0 <= f_min < f_max <= sample_rate / 2 = {nyquist}; found "
                f"f_min={self.f_min}, f_max={self.f_max}."
            )


def float32_kaldi_mel_bank(
    n_mels: int, n_fft: int, sample_rate: float, f_min: float, f_max: float
) -> torch.Tensor:
    """``(n_fft // 2 + 1, n_mels)`` Kaldi mel filters (Nyquist row zero) computed in float32 the
    way ``torchaudio.compliance.kaldi.get_mel_banks`` computes them: the edges from float64
    scalars times a float32 index, the bins' mels in float32. PaSST's buffers; the float64
    :func:`~echoic.features.kaldi.kaldi_mel_bank` differs by up to 1.3e-5 (100 % on the smallest
    weights), 2e-5 after the log."""

    def mel(freq: float) -> float:
        return 1127.0 * math.log(1.0 + freq / 700.0)

    low, high = mel(f_min), mel(f_max)
    delta = (high - low) / (n_mels + 1)
    index = torch.arange(n_mels, dtype=torch.float32)[:, None]
    left, centre, right = (
        low + index * delta,
        low + (index + 1.0) * delta,
        low + (index + 2.0) * delta,
    )
    bins = (sample_rate / n_fft) * torch.arange(n_fft // 2, dtype=torch.float32)
    mels = 1127.0 * (1.0 + bins / 700.0).log()[None, :]
    rising = (mels - left) / (centre - left)
    falling = (right - mels) / (right - centre)
    bank = torch.max(torch.zeros(1), torch.min(rising, falling))  # (n_mels, n_fft / 2)
    return torch.cat([bank, bank.new_zeros(n_mels, 1)], dim=1).T.contiguous()


class PasstMelFrontend(ItemFrontend):
    """PaSST's log-mel: ``(B, S)`` audio → ``(B, n_mels, T)`` values, ``T = 1 + (S - 1) // hop``
    for the longest item."""

    name = "passt_mel"

    def __init__(self, config: PasstMelConfig) -> None:
        super().__init__(config)
        self.config: PasstMelConfig = config
        self.window: torch.Tensor
        self.mel_bank: torch.Tensor
        # float32 as PaSST builds it (torch.hann_window(win, periodic=False))
        self.register_buffer("window", torch.hann_window(config.win_length, periodic=False), False)
        f_max = config.sample_rate / 2 if config.f_max is None else config.f_max
        bank = float32_kaldi_mel_bank(
            config.n_mels, config.n_fft, config.sample_rate, config.f_min, f_max
        )
        self.register_buffer("mel_bank", bank, False)

    @property
    def win_length(self) -> int:
        """1: frames are counted as PaSST counts them (see the module docstring)."""
        return 1

    def padded_items(self, waveform: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(B, L)``: each item pre-emphasised, then reflected ``n_fft / 2`` at its own ends."""
        items = (waveform[i, : int(n)] for i, n in enumerate(lengths.tolist()))
        emphasised = (item[1:] - self.config.preemphasis * item[:-1] for item in items)
        return reflect_items(waveform, emphasised, waveform.shape[1] - 1, self.config.n_fft // 2)

    def _log_mel(
        self, waveform: torch.Tensor, lengths: torch.Tensor, n_frames: int
    ) -> torch.Tensor:
        config = self.config
        if n_frames == 0:
            return waveform.new_zeros(waveform.shape[0], self.n_bins, 0)
        signal = self.padded_items(waveform, lengths)
        signal = signal[:, : (n_frames - 1) * self.hop_length + config.n_fft]
        spectrum = torch.stft(
            signal,
            config.n_fft,
            self.hop_length,
            win_length=config.win_length,
            window=self.window,
            center=False,
            return_complex=True,
        )
        power = spectrum.real.square() + spectrum.imag.square()  # (B, K, T)
        mel = torch.matmul(self.mel_bank.T, power)
        return (mel + config.log_offset).log()

    def forward(self, batch: AudioBatch) -> Features:
        """``AudioBatch`` ``(B, S)`` → ``Features`` ``(B, n_mels, T)``; values past each item's
        ``1 + (n - 1) // hop`` frames are 0."""
        waveform, samples, lengths, n_frames = self._mono_frames(batch)
        values = (self._log_mel(waveform, samples, n_frames) - self.config.mean) / self.config.std
        padded = torch.arange(n_frames, device=values.device)[None, :] >= lengths[:, None]
        values = values.masked_fill(padded[:, None, :], 0.0).contiguous()
        return Features(values, lengths, self.hop_s, self.first_centre_s)


FRONTENDS.register("passt_mel", (PasstMelConfig, PasstMelFrontend))
