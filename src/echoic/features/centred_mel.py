"""torchaudio's centred mel spectrogram in dB (registered as ``"centred_mel"``).

What ``torchaudio.transforms.MelSpectrogram(center=True)`` followed by
``AmplitudeToDB(top_db=...)`` computes — Dasheng's frontend (64 mels, 512-point FFT, 10 ms hop,
0–8 kHz, ``top_db = 120``) — item by item:

1. each item is reflected ``n_fft / 2`` samples at both of its own ends (``pad_mode="reflect"``);
   an item of at most ``n_fft / 2`` samples, which torch cannot reflect, is zero-extended to
   ``n_fft / 2 + 1`` samples first;
2. frame ``i`` is centred on sample ``i * hop`` and reads ``n_fft`` samples through a periodic
   window of ``n_fft`` samples (``torch.hann_window`` in float32, as torchaudio makes it) (``torch.stft`` on the padded item: the kernel torchaudio runs);
   an item of ``n`` samples has ``1 + n // hop`` frames;
3. ``|X| ** power`` → mel filters (``mel_scale`` / ``mel_norm`` as in ``logmel``, but computed in
   float32 as torchaudio computes them: :func:`float32_mel_bank`);
4. ``log="db"``: ``(20 / power) * log10(max(mel, log_floor))`` (``"natural"``, ``"log10"``: those
   logarithms of ``max(mel, log_floor)``);
5. with ``top_db``, values below the item's maximum minus ``top_db`` are raised to it — the maximum
   over the item's own frames (``AmplitudeToDB`` takes it over whatever tensor it is given: for a
   ``(B, F, T)`` batch that is the whole batch, so the reference is run on one clip at a time);
6. ``(x - mean) / std``; with ``cmvn``, per-utterance normalisation (:mod:`echoic.features.cmvn`).

``log_offset`` takes the logarithm of ``mel + log_offset`` (BYOL-A: float32 eps; s3prl's
TERA / Mockingjay preprocessor: 1e-10) before the floor. ``target_level_db`` first scales each
item to that RMS level in dB, ``x · 10^(level / 20) / (rms + 1e-10)`` over its valid samples (s3prl's
``_normalize_wav_decibel``, TERA / Mockingjay: -25).

Frames. The token geometry counts frames the Kaldi "snip edges" way, ``1 + (n - win) // hop``;
centred frames are counted by declaring a window of ``n_fft mod 2`` samples (0 here), so that
``1 + n // hop`` follows and frame 0 is centred at ``(win - 1) / 2 = -0.5`` samples — where the
centre of its ``n_fft``-sample window lies. The analysis window still spans ``n_fft / 2``
samples either side of the frame's centre. Mono only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from echoic.errors import ConfigError
from echoic.features.base import FRONTENDS, check_choice, check_positive
from echoic.features.cmvn import utterance_cmvn
from echoic.features.item_frames import ItemFrontend, reflect_items
from echoic.types import AudioBatch, Features

__all__ = ["CentredMelConfig", "CentredMelFrontend", "float32_mel_bank"]


@dataclass
class CentredMelConfig:
    """Settings of :class:`CentredMelFrontend`; the defaults are Dasheng's."""

    sample_rate: int = 16000
    n_fft: int = 512
    hop_length: int = 160
    n_mels: int = 64
    f_min: float = 0.0
    f_max: float | None = 8000.0
    window: str = "hann"
    power: float = 2.0
    mel_scale: str = "htk"
    mel_norm: str | None = None
    log: str = "db"
    log_floor: float = 1e-10
    top_db: float | None = 120.0
    mean: float = 0.0
    std: float = 1.0
    log_offset: float = 0.0
    target_level_db: float | None = None
    cmvn: bool = False
    cmvn_eps: float = 1e-10

    def __post_init__(self) -> None:
        check_choice(self, "window", ("hann", "hamming", "rectangular"))
        check_choice(self, "mel_scale", ("htk", "slaney"))
        check_choice(self, "mel_norm", (None, "slaney"))
        check_choice(self, "log", ("db", "natural", "log10"))
        check_positive(self, ("sample_rate", "n_fft", "hop_length", "n_mels"))
        if self.power <= 0 or self.log_floor <= 0 or (self.top_db is not None and self.top_db < 0):
            raise ConfigError(
                "CentredMelConfig.power and log_floor must be > 0 and top_db >= 0 (or None); found "
                f"{self.power}, {self.log_floor}, {self.top_db}."
            )


def float32_mel_bank(
    n_freqs: int,
    n_mels: int,
    sample_rate: int,
    f_min: float,
    f_max: float,
    mel_scale: str = "htk",
    mel_norm: str | None = None,
) -> torch.Tensor:
    """``(n_freqs, n_mels)`` triangular mel filters computed in float32 the way torchaudio's
    ``melscale_fbanks`` computes them (edges in float32, slopes from edge differences): the
    published models' buffers, which :func:`~echoic.features.logmel.mel_filter_bank`'s float64
    filters match only to ~5e-6 (0.2 % on the smallest weights)."""

    def to_mel(freq: float) -> float:
        if mel_scale == "htk":
            return 2595.0 * math.log10(1.0 + freq / 700.0)
        if freq < 1000.0:
            return freq / (200.0 / 3)
        return 15.0 + math.log(freq / 1000.0) / (math.log(6.4) / 27.0)

    bins = torch.linspace(0, sample_rate // 2, n_freqs)
    mels = torch.linspace(to_mel(f_min), to_mel(f_max), n_mels + 2)
    if mel_scale == "htk":
        edges = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    else:
        edges = (200.0 / 3) * mels
        high = mels >= 15.0
        edges[high] = 1000.0 * torch.exp((math.log(6.4) / 27.0) * (mels[high] - 15.0))
    widths = edges[1:] - edges[:-1]
    slopes = edges[None, :] - bins[:, None]
    falling = (-1.0 * slopes[:, :-2]) / widths[:-1]
    rising = slopes[:, 2:] / widths[1:]
    bank = torch.max(torch.zeros(1), torch.min(falling, rising))
    if mel_norm == "slaney":
        bank *= (2.0 / (edges[2 : n_mels + 2] - edges[:n_mels]))[None, :]
    return bank


class CentredMelFrontend(ItemFrontend):
    """Centred log-mel: ``(B, S)`` audio → ``(B, n_mels, T)`` values, ``T = 1 + S // hop`` for
    the longest item (frame ``i`` centred on sample ``i * hop``)."""

    name = "centred_mel"

    def __init__(self, config: CentredMelConfig) -> None:
        super().__init__(config)
        self.config: CentredMelConfig = config
        self.window: torch.Tensor
        self.mel_bank: torch.Tensor
        windows = {"hann": torch.hann_window, "hamming": torch.hamming_window}
        make = windows.get(config.window, torch.ones)
        self.register_buffer("window", make(config.n_fft), False)  # float32, as torchaudio
        f_max = config.sample_rate / 2 if config.f_max is None else config.f_max
        bank = float32_mel_bank(
            config.n_fft // 2 + 1,
            config.n_mels,
            config.sample_rate,
            config.f_min,
            f_max,
            config.mel_scale,
            config.mel_norm,
        )
        self.register_buffer("mel_bank", bank, False)

    @property
    def win_length(self) -> int:
        """``n_fft mod 2``: frames are counted by their centres (see the module docstring)."""
        return int(self.config.n_fft) % 2

    @property
    def min_samples(self) -> int:
        """One sample gives one frame (a shorter item is zero-extended before the reflection)."""
        return 1

    def padded_items(self, waveform: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(B, max(S, n_fft / 2 + 1) + n_fft)``: each item's valid samples reflected ``n_fft / 2`` at both ends."""
        items = (waveform[i, : int(n)] for i, n in enumerate(lengths.tolist()))
        return reflect_items(waveform, items, waveform.shape[1], self.config.n_fft // 2)

    def _log_mel(
        self, waveform: torch.Tensor, lengths: torch.Tensor, n_frames: int
    ) -> torch.Tensor:
        config = self.config
        if n_frames == 0:
            return waveform.new_zeros(waveform.shape[0], self.n_bins, 0)
        if config.target_level_db is not None:
            target = 10.0 ** (config.target_level_db / 20.0)
            rms = [waveform[i, : int(n)].pow(2).mean().pow(0.5) for i, n in enumerate(lengths)]
            waveform = waveform * torch.stack([target / (r + 1e-10) for r in rms])[:, None]
        signal = self.padded_items(waveform, lengths)[
            :, : (n_frames - 1) * self.hop_length + config.n_fft
        ]
        spectrum = torch.stft(
            signal,
            config.n_fft,
            self.hop_length,
            window=self.window,
            center=False,
            return_complex=True,
        )
        power = spectrum.abs().pow(config.power)  # (B, K, T), as torchaudio forms it
        mel = torch.matmul(power.transpose(1, 2), self.mel_bank).transpose(1, 2)
        if config.log_offset:
            mel = mel + config.log_offset
        mel = mel.clamp_min(config.log_floor)
        if config.log == "natural":
            return mel.log()
        values = mel.log10()
        return values * (20.0 / config.power) if config.log == "db" else values

    def forward(self, batch: AudioBatch) -> Features:
        """``AudioBatch`` ``(B, S)`` → ``Features`` ``(B, n_mels, T)``; values past each item's
        ``1 + n // hop`` frames are 0."""
        waveform, samples, lengths, n_frames = self._mono_frames(batch)
        values = self._log_mel(waveform, samples, n_frames)
        padded = (
            torch.arange(n_frames, device=values.device)[None, None, :] >= lengths[:, None, None]
        )
        if self.config.top_db is not None and n_frames:
            peak = values.masked_fill(padded, float("-inf")).amax(dim=(1, 2), keepdim=True)
            values = torch.maximum(values, peak - self.config.top_db)
        mean, std = float(self.config.mean), float(self.config.std)
        if mean != 0.0 or std != 1.0:
            values = (values - mean) / std
        if self.config.cmvn:
            values = utterance_cmvn(values, lengths, self.config.cmvn_eps)
        values = values.masked_fill(padded, 0.0).contiguous()
        return Features(values, lengths, self.hop_s, self.first_centre_s)


FRONTENDS.register("centred_mel", (CentredMelConfig, CentredMelFrontend))
