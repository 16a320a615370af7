"""Channel-aware log-mel frontend for spatial audio (registered as ``"spatial_logmel"``).

The :mod:`logmel <echoic.features.logmel>` frontend with settings for binaural and ambisonic
input: every channel's log-mel (dB), then inter-channel cues against channel 0
(:mod:`echoic.features.interchannel`), so ``Features.values`` is ``(B, out_channels, n_mels, T)``
and a ViT with ``in_channels = out_channels`` patches every channel and cue together (GRAM's
multichannel patches). Defaults, for 2-channel binaural audio (channel 0 = left, 1 = right):

- ``channel0``, ``channel1``: log-mel in dB, normalised with ``mean=-24, std=23`` (the dB mean
  and standard deviation measured over 80 clips of gcompris voices and ESC-50, 16 kHz).
- ``ild1``: interaural level difference, right minus left, in dB divided by ``std`` (negative
  when the left ear is louder), per mel band.
- ``ipd_cos1``, ``ipd_sin1``: cos and sin of the interaural phase difference (right against
  left) of the STFT, pooled onto the mel bands (magnitude 1 where a band's phase is coherent).

For first-order ambisonics set ``channels: 4, interchannel: iv`` (log-mel of W, X, Y, Z plus the
three normalised intensity-vector components, GRAM's 7-channel input) or add ``ild`` / ``gcc``;
``"ild+ipd+gcc"`` suits other microphone arrays. A spatial frontend needs at least 2 channels:
mono audio is refused with the fix (use ``logmel`` for mono models).

GRAM itself feeds the binaural log-mels alone (the cues are left for the encoder to find); the
explicit ILD / IPD here give a small CPU model the level and phase cues directly and are switched
off with ``interchannel: none``.
"""

from __future__ import annotations

from dataclasses import dataclass

from echoic.errors import ConfigError
from echoic.features.base import FRONTENDS
from echoic.features.logmel import LogMelConfig, LogMelFrontend

__all__ = ["SpatialLogMelConfig", "SpatialLogMelFrontend"]


@dataclass
class SpatialLogMelConfig(LogMelConfig):
    """Settings of :class:`SpatialLogMelFrontend`: :class:`LogMelConfig` with spatial defaults
    (2 channels, dB log-mel, ILD + IPD, a 512-point FFT of 25-ms windows every 10 ms)."""

    n_fft: int = 512
    log: str = "db"
    mean: float = -24.0
    std: float = 23.0
    channels: int = 2
    interchannel: str = "ild+ipd"

    def __post_init__(self) -> None:
        if int(self.channels) == self.channels and self.channels < 2:
            raise ConfigError(
                f"SpatialLogMelConfig.channels must be >= 2 (a spatial frontend compares "
                f"channels); found {self.channels}. Use the 'logmel' frontend for mono models."
            )
        super().__post_init__()


class SpatialLogMelFrontend(LogMelFrontend):
    """Per-channel log-mel plus inter-channel cues: ``(B, C, S)`` → ``(B, out_channels, F, T)``."""

    name = "spatial_logmel"


FRONTENDS.register("spatial_logmel", (SpatialLogMelConfig, SpatialLogMelFrontend))
