"""Whisper's log-mel spectrogram (registered as ``"whisper_logmel"``).

What ``WhisperFeatureExtractor`` (transformers) and ``whisper.log_mel_spectrogram`` (openai-whisper)
compute, item by item:

1. the clip is zero-padded to ``chunk_length_s`` (30 s) — Whisper's fixed input window;
2. a centred STFT (``torch.stft(center=True)``): frame ``i`` is centred on sample ``i * hop``
   (160, 10 ms) and reads the ``n_fft = 400`` samples around it through a periodic Hann window; the
   first frames read a reflection of the clip's first ``n_fft / 2`` samples, frames past the end of
   a shorter clip read the zero padding (and past the end of the window, its reflection);
3. power spectrum → Slaney-style mel filters (``n_mels`` 80, or 128 for large-v3, 0–8 kHz, area
   normalised, librosa's) → ``log10(max(mel, 1e-10))``;
4. a floor ``dynamic_range`` (8) below the item's maximum over its whole padded window — every
   frame Whisper computes, including the frames after the clip (silence: ``log10(1e-10) = -10``);
5. ``(x + 4) / 4`` — here the base class's ``(x - mean) / std`` with ``mean = -4, std = 4``.

Frames. echoic returns the frames whose **centre** lies inside the clip: ``ceil(n / hop)`` of
them for ``n`` samples — the frames ``WhisperFeatureExtractor``'s attention mask marks valid. So
that the token geometry (which counts frames the Kaldi "snip edges" way, ``1 + (n - win) // hop``)
agrees, a frame declares a window of one sample, its centre (``win_length = 1``,
``first_centre_s = 0``): the analysis window still spans ``n_fft / 2`` samples either side. The
one or two frames whose centre lies past the clip's end but whose window still reaches into it are
not returned; they do enter the maximum of step 4, so every returned value equals Whisper's.
What Whisper's encoder sees in the rest of its 30-s window is left to the encoder
(:mod:`echoic.encoders.whisper`, ``pad_to_max``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from echoic.errors import ConfigError
from echoic.features.base import FRONTENDS, Frontend, check_positive
from echoic.features.logmel import analysis_window, mel_filter_bank
from echoic.types import AudioBatch, Features

__all__ = ["WhisperLogMelConfig", "WhisperLogMelFrontend"]


@dataclass
class WhisperLogMelConfig:
    """Settings of :class:`WhisperLogMelFrontend`; the defaults are Whisper's (80 mels).

    chunk_length_s: Whisper's input window; shorter clips are zero-padded to it before the STFT
        (this only changes frames whose window reaches past the window's end, and the maximum of
        the floor, which the padding's silence never raises).
    dynamic_range: the floor sits this far (in log10 units) below the item's maximum.
    log_floor: mel energies are clamped to at least this before the log10.
    mean / std: ``(x - mean) / std`` after the floor; Whisper's ``(x + 4) / 4``.
    """

    sample_rate: int = 16000
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 80
    f_max: float = 8000.0
    chunk_length_s: float = 30.0
    dynamic_range: float = 8.0
    log_floor: float = 1e-10
    mean: float = -4.0
    std: float = 4.0

    def __post_init__(self) -> None:
        check_positive(self, ("sample_rate", "n_fft", "hop_length", "n_mels"))
        if self.n_fft % 2:
            raise ConfigError(
                f"WhisperLogMelConfig.n_fft must be even (frames are centred on a sample, "
                f"n_fft / 2 either side); found {self.n_fft}."
            )
        if not 0.0 < self.f_max <= self.sample_rate / 2:
            raise ConfigError(
                f"WhisperLogMelConfig.f_max must lie in (0, {self.sample_rate / 2}]; found "
                f"{self.f_max}."
            )
        if self.chunk_length_s <= 0 or self.dynamic_range <= 0 or self.log_floor <= 0:
            raise ConfigError(
                "WhisperLogMelConfig.chunk_length_s, dynamic_range and log_floor must be > 0; "
                f"found {self.chunk_length_s}, {self.dynamic_range}, {self.log_floor}."
            )

    @property
    def chunk_samples(self) -> int:
        """Samples of Whisper's input window (480 000 for 30 s at 16 kHz)."""
        return round(self.chunk_length_s * self.sample_rate)


class WhisperLogMelFrontend(Frontend):
    """Whisper's log-mel: ``(B, S)`` audio → ``(B, n_mels, T)`` values, ``T = ceil(S / hop)`` for
    the longest item (frame ``i`` centred on sample ``i * hop``). Mono only."""

    name = "whisper_logmel"

    def __init__(self, config: WhisperLogMelConfig) -> None:
        super().__init__(config)
        self.config: WhisperLogMelConfig = config
        self.window: torch.Tensor
        self.mel_bank: torch.Tensor
        self.register_buffer("window", analysis_window("hann", config.n_fft), False)
        bank = mel_filter_bank(
            config.n_fft // 2 + 1,
            config.n_mels,
            config.sample_rate,
            0.0,
            config.f_max,
            mel_scale="slaney",
            mel_norm="slaney",
        )
        self.register_buffer("mel_bank", bank, False)

    @property
    def n_bins(self) -> int:
        return int(self.config.n_mels)

    @property
    def win_length(self) -> int:
        """1: a frame is counted by its centre sample (see the module docstring)."""
        return 1

    @property
    def hop_length(self) -> int:
        return int(self.config.hop_length)

    def analysed_frames(self, lengths: torch.Tensor) -> torch.Tensor:
        """``(B,)`` frames entering each item's maximum: those centred inside its padded window
        (``max(n, chunk)`` samples; Whisper drops the frame centred on the window's end) whose
        analysis window holds at least one of its samples."""
        half, hop = self.config.n_fft // 2, self.hop_length
        padded = lengths.clamp_min(self.config.chunk_samples)
        touching = torch.div(lengths + half - 1, hop, rounding_mode="floor") + 1
        inside = torch.div(padded - 1, hop, rounding_mode="floor") + 1
        return torch.minimum(torch.where(lengths > 0, touching, 0), inside)

    def padded_signal(
        self, waveform: torch.Tensor, lengths: torch.Tensor, n_frames: int
    ) -> torch.Tensor:
        """``(B, max((n_frames - 1) * hop, 1) + n_fft)``: each item as the centred STFT reads it —
        its samples 1 … ``n_fft / 2`` reflected in front, zeros after its end up to its padded
        window (``max(n, chunk)`` samples), and that window's end reflected after it."""
        half, hop = self.config.n_fft // 2, self.hop_length
        batch = waveform.shape[0]
        total = max((n_frames - 1) * hop, 1) + 2 * half  # room for the reflection too
        body = total - half  # samples of the clip (or its zero padding) the frames read
        clip = waveform[:, : min(body, waveform.shape[1])]
        valid = torch.arange(clip.shape[1], device=waveform.device)[None, :] < lengths[:, None]
        signal = waveform.new_zeros(batch, total)
        signal[:, half : half + clip.shape[1]] = clip.masked_fill(~valid, 0.0)
        signal[:, :half] = signal[:, half + 1 : 2 * half + 1].flip(-1)
        chunk = self.config.chunk_samples
        for i, n in enumerate(lengths.tolist()):
            end = max(int(n), chunk)  # the padded window of this item
            if end >= body:
                continue  # no frame read past it
            tail = signal[i, half + end - 1 - min(half, body - end) : half + end - 1].flip(-1)
            signal[i, half + end : half + end + tail.shape[0]] = tail
        return signal

    def log_mel(self, signal: torch.Tensor, n_frames: int) -> torch.Tensor:
        """``(B, S)`` padded signal → ``(B, n_mels, n_frames)`` ``log10(max(mel, log_floor))``."""
        n_fft, hop = self.config.n_fft, self.hop_length
        signal = signal[:, : (n_frames - 1) * hop + n_fft]
        # torch.stft on the padded signal (center=False): the kernel Whisper's centred STFT runs
        spectrum = torch.stft(
            signal, n_fft, hop, window=self.window, center=False, return_complex=True
        )
        power = spectrum.abs().square()  # |X|² as Whisper forms it (abs, then square)
        mel = torch.matmul(self.mel_bank.T, power)
        return mel.clamp_min_(self.config.log_floor).log10_()

    def compute(self, waveform: torch.Tensor, n_frames: int) -> torch.Tensor:
        """``(B, S)`` (every sample valid) → ``(B, n_mels, n_frames)`` floored log-mel (not yet
        normalised)."""
        lengths = torch.full((waveform.shape[0],), waveform.shape[1], device=waveform.device)
        return self._floored(waveform, lengths, n_frames)

    def _floored(
        self, waveform: torch.Tensor, lengths: torch.Tensor, n_frames: int
    ) -> torch.Tensor:
        analysed = self.analysed_frames(lengths)
        n_analysed = max(n_frames, int(analysed.max()) if analysed.numel() else 0)
        if n_analysed == 0:
            return waveform.new_zeros(waveform.shape[0], self.n_bins, 0)
        log_spec = self.log_mel(self.padded_signal(waveform, lengths, n_analysed), n_analysed)
        counted = torch.arange(n_analysed, device=waveform.device)[None, :] < analysed[:, None]
        peak = log_spec.masked_fill(~counted[:, None, :], float("-inf")).amax(dim=(1, 2))
        floor = (peak - self.config.dynamic_range)[:, None, None]
        return torch.maximum(log_spec[:, :, :n_frames], floor)

    def forward(self, batch: AudioBatch) -> Features:
        """``AudioBatch`` ``(B, S)`` → ``Features`` ``(B, n_mels, T)``, ``T = ceil(S_max / hop)``;
        values past each item's ``ceil(n / hop)`` frames are 0."""
        waveform = self.check_batch(batch)
        lengths_samples = batch.lengths.to(waveform.device)
        lengths = self.num_frames(lengths_samples)
        n_frames = int(lengths.max()) if lengths.numel() else 0
        values = self._floored(waveform, lengths_samples, n_frames)
        mean, std = float(self.config.mean), float(self.config.std)
        values = (values - mean) / std
        padded = torch.arange(n_frames, device=values.device)[None, :] >= lengths[:, None]
        values = values.masked_fill(padded[:, None, :], 0.0).contiguous()
        return Features(values, lengths, self.hop_s, self.first_centre_s)


FRONTENDS.register("whisper_logmel", (WhisperLogMelConfig, WhisperLogMelFrontend))
