"""Kaldi-compatible log mel filter bank ("fbank"), batched in torch (registered as ``"kaldi_fbank"``).

The semantics are those of Kaldi's ``compute-fbank-feats`` and ``torchaudio.compliance.kaldi.fbank``
with ``dither=0`` and ``snip_edges=True`` — the frontend BEATs, EAT, SSAST, AST and AudioMAE
checkpoints were trained on. Per frame of ``frame_length_ms`` every ``frame_shift_ms``:

1. scale the waveform by ``waveform_scale`` (Kaldi reads 16-bit PCM as integers: BEATs uses 32768);
2. subtract the frame mean (``remove_dc_offset``);
3. pre-emphasis ``y[n] = x[n] - c x[n-1]`` with ``y[0] = x[0] - c x[0]``;
4. multiply by a symmetric window (``povey`` = Hann ** 0.85, ``hanning``, ``hamming``,
   ``rectangular``, ``blackman``);
5. zero-pad on the right to the next power of two (``round_to_power_of_two``), ``rfft``;
6. power (or magnitude) spectrum → Kaldi mel bank (triangles in mel ``1127 ln(1 + f / 700)``
   between ``low_freq`` and ``high_freq``; ``high_freq <= 0`` means Nyquist + ``high_freq``);
7. ``log(max(energy, float32 eps))`` (``use_log_fbank``);
8. optionally the log frame energy as an extra bin (first, or last with ``htk_compat``).

With ``channels = C > 1`` the frontend takes ``(B, C, S)`` audio and computes each channel the same
way, optionally appending inter-channel level / phase differences (``interchannel``, see
:mod:`echoic.features.interchannel`; the level difference needs ``use_log_fbank``).

Not supported: dither (use ``dither=0`` semantics), VTLN warping, ``subtract_mean``.

With 128 bins at 16 kHz (512-point FFT) filter 3 covers no FFT bin: Kaldi and kaldi_native_fbank
refuse such settings, torchaudio (and so BEATs, AST, EAT, AudioMAE) and this frontend give that bin
the constant ``log(float32 eps) = -15.94``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from echoic.errors import ConfigError
from echoic.features.base import FRONTENDS, Frontend, check_choice
from echoic.features.interchannel import check_channels, pooling_weights

WINDOWS = ("povey", "hanning", "hamming", "rectangular", "blackman")
FLOAT32_EPS = float(torch.finfo(torch.float32).eps)

KALDI_FBANK_PRESETS: dict[str, dict[str, Any]] = {
    # AST, SSAST and AudioMAE: torchaudio kaldi.fbank(htk_compat=True, window_type="hanning",
    # num_mel_bins=128, dither=0) of the [-1, 1] waveform, then (x - mean) / (2 * std).
    "ast": {"window": "hanning", "n_mels": 128, "mean": -4.2677393, "std": 2 * 4.5689974},
    # BEATs: kaldi.fbank(waveform * 2**15, num_mel_bins=128) (povey window), then
    # (x - 15.41663) / (2 * 6.55582).
    "beats": {
        "window": "povey",
        "n_mels": 128,
        "waveform_scale": 32768.0,
        "mean": 15.41663,
        "std": 2 * 6.55582,
    },
}
"""Config overrides reproducing published checkpoints' input features (normalisation included)."""


@dataclass
class KaldiFbankConfig:
    """Settings of :class:`KaldiFbankFrontend`; names follow Kaldi's options.

    channels: audio channels taken (1 = mono ``(B, S)``; ``C > 1``: ``(B, C, S)``).
    interchannel: ``"none"``, ``"ild"``, ``"ipd"`` or ``"ild+ipd"`` features appended for 2+
        channels (:mod:`echoic.features.interchannel`).
    cmvn / cmvn_eps: per-utterance normalisation after everything else, ``(x - mean) / (std +
        cmvn_eps)`` over each item's frames (:mod:`echoic.features.cmvn`; s3prl's APC / NPC).
    """

    sample_rate: int = 16000
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    n_mels: int = 128
    low_freq: float = 20.0
    high_freq: float = 0.0
    preemphasis: float = 0.97
    remove_dc_offset: bool = True
    window: str = "povey"
    blackman_coeff: float = 0.42
    round_to_power_of_two: bool = True
    use_power: bool = True
    use_log_fbank: bool = True
    use_energy: bool = False
    raw_energy: bool = True
    htk_compat: bool = False
    energy_floor: float = 0.0
    waveform_scale: float = 1.0
    mean: float = 0.0
    std: float = 1.0
    channels: int = 1
    interchannel: str = "none"
    cmvn: bool = False
    cmvn_eps: float = 1e-10

    def __post_init__(self) -> None:
        check_channels(self)
        if "ild" in self.interchannel and not self.use_log_fbank:
            raise ConfigError(
                f"KaldiFbankConfig.interchannel={self.interchannel!r} takes the level difference "
                "as a difference of log energies, so it needs use_log_fbank=True; found False. "
                "Set use_log_fbank=True or interchannel='ipd'."
            )
        check_choice(self, "window", WINDOWS)
        if self.n_mels <= 3:
            raise ConfigError(
                f"KaldiFbankConfig.n_mels must be > 3 (as in Kaldi); found {self.n_mels}."
            )
        if self.sample_rate <= 0 or self.frame_length_ms <= 0 or self.frame_shift_ms <= 0:
            raise ConfigError(
                "KaldiFbankConfig.sample_rate, frame_length_ms and frame_shift_ms must be > 0; found "
                f"{self.sample_rate}, {self.frame_length_ms}, {self.frame_shift_ms}."
            )
        if self.win_length < 2 or self.hop_length < 1:
            raise ConfigError(
                f"KaldiFbankConfig gives frames of {self.win_length} samples every {self.hop_length}; "
                "expected at least 2 and 1. Raise frame_length_ms / frame_shift_ms."
            )
        nyquist = self.sample_rate / 2
        high = self.effective_high_freq
        if not (0.0 <= self.low_freq < nyquist and 0.0 < high <= nyquist and self.low_freq < high):
            raise ConfigError(
                f"KaldiFbankConfig needs 0 <= low_freq < high_freq <= {nyquist} (Nyquist); found "
                f"low_freq={self.low_freq}, high_freq={self.high_freq} (→ {high}). "
                "high_freq <= 0 counts down from Nyquist (0 = Nyquist)."
            )

    @property
    def win_length(self) -> int:
        """Samples per frame, as torchaudio computes it: ``int(sr * ms * 0.001)``."""
        return int(self.sample_rate * self.frame_length_ms * 0.001)

    @property
    def hop_length(self) -> int:
        """Samples between frames: ``int(sr * ms * 0.001)``."""
        return int(self.sample_rate * self.frame_shift_ms * 0.001)

    @property
    def fft_length(self) -> int:
        """FFT size: the frame length, or the next power of two above it."""
        n = self.win_length
        return 1 << (n - 1).bit_length() if self.round_to_power_of_two else n

    @property
    def effective_high_freq(self) -> float:
        """``high_freq`` in Hz after applying the ``<= 0`` → Nyquist + ``high_freq`` rule."""
        return self.high_freq if self.high_freq > 0 else self.sample_rate / 2 + self.high_freq


def kaldi_window(name: str, length: int, blackman_coeff: float = 0.42) -> torch.Tensor:
    """``(length,)`` float32 symmetric Kaldi window (``a = 2 pi / (length - 1)``)."""
    n = torch.arange(length, dtype=torch.float64)
    a = 2 * math.pi / (length - 1)
    if name == "hanning":
        window = 0.5 - 0.5 * torch.cos(a * n)
    elif name == "povey":
        window = (0.5 - 0.5 * torch.cos(a * n)).pow(0.85)
    elif name == "hamming":
        window = 0.54 - 0.46 * torch.cos(a * n)
    elif name == "blackman":
        window = (
            blackman_coeff - 0.5 * torch.cos(a * n) + (0.5 - blackman_coeff) * torch.cos(2 * a * n)
        )
    elif name == "rectangular":
        window = torch.ones(length, dtype=torch.float64)
    else:
        raise ConfigError(f"unknown Kaldi window {name!r}; expected one of {', '.join(WINDOWS)}.")
    return window.to(torch.float32)


def kaldi_mel_bank(
    n_mels: int, fft_length: int, sample_rate: float, low_freq: float, high_freq: float
) -> torch.Tensor:
    """``(fft_length // 2 + 1, n_mels)`` float32 Kaldi mel bank (the Nyquist row is zero).

    ``high_freq`` is in Hz (already resolved from Kaldi's ``<= 0`` convention). Filters are
    triangles in mel space with ``n_mels + 2`` equally spaced edges; bin ``k`` sits at
    ``k * sample_rate / fft_length`` Hz.
    """

    def mel(freq: torch.Tensor | float) -> torch.Tensor:
        return 1127.0 * torch.log1p(torch.as_tensor(freq, dtype=torch.float64) / 700.0)

    mel_low, mel_high = mel(low_freq), mel(high_freq)
    delta = (mel_high - mel_low) / (n_mels + 1)
    index = torch.arange(n_mels, dtype=torch.float64)[None, :]
    left = mel_low + index * delta
    centre = mel_low + (index + 1) * delta
    right = mel_low + (index + 2) * delta
    bins = mel(torch.arange(fft_length // 2, dtype=torch.float64) * (sample_rate / fft_length))
    bins = bins[:, None]
    rising = (bins - left) / (centre - left)
    falling = (right - bins) / (right - centre)
    bank = torch.minimum(rising, falling).clamp_min(0.0)
    bank = torch.cat([bank, bank.new_zeros(1, n_mels)], dim=0)
    return bank.to(torch.float32)


def frame_sums(signal: torch.Tensor, n_frames: int, win: int, hop: int) -> torch.Tensor:
    """``(B, n_frames)`` float64 sums of ``signal`` ``(B, S)`` over each frame, from a running sum.

    On devices without float64 (Apple MPS) the frames are summed directly in float32.
    """
    if signal.device.type == "mps":
        return signal.unfold(-1, win, hop)[:, :n_frames].sum(-1)
    starts = torch.arange(n_frames, device=signal.device) * hop
    running = torch.nn.functional.pad(signal.double().cumsum(-1), (1, 0))
    return running[:, starts + win] - running[:, starts]


class KaldiFbankFrontend(Frontend):
    """Kaldi fbank: ``(B, S)`` audio → ``(B, n_mels [+1 energy], T)`` normalised log mel energies
    (``(B, C, S)`` → ``(B, out_channels, F, T)`` with ``channels = C > 1``)."""

    name = "kaldi_fbank"

    def __init__(self, config: KaldiFbankConfig) -> None:
        super().__init__(config)
        self.config: KaldiFbankConfig = config
        self.window: torch.Tensor
        self.mel_bank: torch.Tensor
        window = kaldi_window(config.window, config.win_length, config.blackman_coeff)
        self.register_buffer("window", window, False)
        bank = kaldi_mel_bank(
            config.n_mels,
            config.fft_length,
            config.sample_rate,
            config.low_freq,
            config.effective_high_freq,
        )
        self.register_buffer("mel_bank", bank, False)

    @property
    def n_bins(self) -> int:
        return int(self.config.n_mels) + int(self.config.use_energy)

    @property
    def win_length(self) -> int:
        return self.config.win_length

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    def floor_log_energy(self, energy: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` frame energies → log, floored at float32 eps and at ``energy_floor``."""
        log_energy = energy.clamp_min(FLOAT32_EPS).log()
        if self.config.energy_floor > 0.0:
            log_energy = log_energy.clamp_min(math.log(self.config.energy_floor))
        return log_energy

    def windowed_frames(
        self, waveform: torch.Tensor, n_frames: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(B, S)`` → ``(B, n_frames, win)`` frames after DC removal, pre-emphasis and window.

        Also returns the ``(B, n_frames)`` raw energy (after DC removal, before pre-emphasis) when
        ``use_energy`` and ``raw_energy`` ask for it. Frame means come from a float64 running sum
        (one pass over the signal instead of one over the frames) and are removed before
        pre-emphasis, as Kaldi does, which keeps float32 rounding relative to the signal rather
        than to a DC offset. Pre-emphasis: ``y[n] = x[n] - c x[n - 1]``, ``y[0] = (1 - c) x[0]``.
        """
        config = self.config
        win, hop = self.win_length, self.hop_length
        frames = waveform.unfold(-1, win, hop)[:, :n_frames]
        if config.remove_dc_offset:
            mean = frame_sums(waveform, n_frames, win, hop) / win
            frames = frames - mean.to(frames.dtype)[..., None]
        raw_energy = None
        if config.use_energy and config.raw_energy:
            raw_energy = torch.linalg.vecdot(frames, frames)
        coeff, window = config.preemphasis, self.window
        if coeff == 0.0:
            return frames * window, raw_energy
        out = torch.empty_like(frames)
        torch.sub(frames[..., 1:], frames[..., :-1], alpha=coeff, out=out[..., 1:])
        out[..., 0] = frames[..., 0] * (1.0 - coeff)
        return out.mul_(window), raw_energy

    def complex_spectrum(self, waveform: torch.Tensor, n_frames: int) -> torch.Tensor:
        """``(B, S)`` → ``(B, n_frames, fft_length // 2 + 1)`` complex spectra of the frames after
        DC removal, pre-emphasis and window (``waveform_scale`` does not change phases: not applied)."""
        frames, _ = self.windowed_frames(waveform, n_frames)
        return torch.fft.rfft(frames, n=self.config.fft_length)

    def phase_pooling(self) -> torch.Tensor:
        """``(fft_length // 2 + 1, F)`` mel filters scaled to sum to 1 each; the energy bin (with
        ``use_energy``) and filters covering no FFT bin get a zero column."""
        weights = pooling_weights(self.mel_bank)
        if not self.config.use_energy:
            return weights
        zero = weights.new_zeros(weights.shape[0], 1)
        return torch.cat([weights, zero] if self.config.htk_compat else [zero, weights], dim=1)

    def compute(self, waveform: torch.Tensor, n_frames: int) -> torch.Tensor:
        """``(B, S)`` → ``(B, F, n_frames)`` Kaldi fbank (not yet normalised)."""
        config = self.config
        if config.waveform_scale != 1.0:
            waveform = waveform * config.waveform_scale
        frames, energy = self.windowed_frames(waveform, n_frames)
        if config.use_energy and not config.raw_energy:
            energy = torch.linalg.vecdot(frames, frames)
        spectrum = torch.fft.rfft(frames, n=config.fft_length)
        if config.use_power:
            spectrum = spectrum.real.square().add_(spectrum.imag.square())
        else:
            spectrum = spectrum.abs()
        # (F, K) @ (B, K, T) → (B, F, T), contiguous without a transpose copy.
        mel = torch.matmul(self.mel_bank.T, spectrum.transpose(1, 2))
        if config.use_log_fbank:
            mel = mel.clamp_min_(FLOAT32_EPS).log_()
        if energy is not None:
            log_energy = self.floor_log_energy(energy)[:, None, :]
            mel = torch.cat([mel, log_energy] if config.htk_compat else [log_energy, mel], dim=1)
        return mel


FRONTENDS.register("kaldi_fbank", (KaldiFbankConfig, KaldiFbankFrontend))
