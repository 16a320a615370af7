"""Multichannel frontends: channel layout and the inter-channel level and phase differences.

A spectral frontend configured with ``channels = C > 1`` computes every channel exactly as its
mono path computes a ``(B, S)`` waveform and stacks them into ``(B, C, F, T)`` values. Its config's
``interchannel`` option appends, for ``C >= 2``, features comparing channel ``c >= 1`` with the
reference channel 0, as extra channels of ``values`` (in this order):

- ``"ild"``: the inter-channel level difference ``values[:, c] - values[:, 0]`` of the normalised
  log features, i.e. ``(log E_c - log E_0) / std`` in the frontend's own log unit on its own bins
  (for ``logmel`` with ``log="db"`` and ``std=1``: the dB difference of the mel energies; for
  ``kaldi_fbank``: the natural-log ratio of the mel energies, floored like the features are).
  ``C - 1`` channels ``ild1 … ild{C-1}``.
- ``"ipd"``: the inter-channel phase difference of the frontend's own windowed STFT,
  ``φ_c - φ_0`` per linear bin as ``cos`` and ``sin`` of the cross-spectrum
  ``X_c conj(X_0) / |X_c conj(X_0)|`` (0 and 0 where that is 0), then pooled onto the frontend's
  mel bins with the mel filter bank's weights normalised to sum to 1 per filter (a weighted mean
  of unit phasors: magnitude 1 when the band's phase is coherent, smaller when it spreads). Mel
  filters covering no FFT bin, and the Kaldi energy bin, give 0. Not normalised (values in
  [-1, 1]). A channel delayed by ``τ`` seconds against channel 0 gives ``cos(2π f τ)`` and
  ``-sin(2π f τ)`` at frequency ``f``. ``2 (C - 1)`` channels ``ipd_cos1, ipd_sin1, …``.
- ``"ild+ipd"``: both, ILD first.

Mel pooling (rather than linear bins) keeps every channel on the same ``F`` bins, which
``Features.values`` ``(B, C, F, T)`` and a patch embedding over ``C`` channels require.
"""

from __future__ import annotations

import difflib
from typing import Any

import torch

from echoic.errors import ConfigError

INTERCHANNEL = ("none", "ild", "ipd", "ild+ipd")
"""Choices of a spectral frontend config's ``interchannel`` field."""

__all__ = [
    "INTERCHANNEL",
    "channel_names",
    "check_channels",
    "level_differences",
    "phase_difference",
    "pool_onto_bins",
    "pooling_weights",
]


def check_channels(config: Any) -> None:
    """Raise a :class:`ConfigError` unless ``config.channels >= 1`` and ``config.interchannel`` is
    a valid choice that the channel count supports (inter-channel features need 2+ channels)."""
    name = type(config).__name__
    channels = int(config.channels)
    if channels != config.channels or channels < 1:
        raise ConfigError(
            f"{name}.channels must be an integer >= 1 (1 = mono); found {config.channels!r}."
        )
    choice = getattr(config, "interchannel", "none")
    if choice not in INTERCHANNEL:
        close = difflib.get_close_matches(str(choice), INTERCHANNEL, n=1, cutoff=0.0)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"{name}.interchannel must be one of {', '.join(INTERCHANNEL)}; found {choice!r}.{hint}"
        )
    if choice != "none" and channels < 2:
        raise ConfigError(
            f"{name}.interchannel={choice!r} compares channels, so it needs channels >= 2; found "
            f"channels={channels}. Set channels to the audio's channel count or interchannel='none'."
        )


def channel_names(channels: int, interchannel: str = "none") -> tuple[str, ...]:
    """Names of the channels of ``Features.values``, in order (see the module docstring)."""
    names = [f"channel{c}" for c in range(channels)]
    if channels > 1 and "ild" in interchannel:
        names += [f"ild{c}" for c in range(1, channels)]
    if channels > 1 and "ipd" in interchannel:
        for c in range(1, channels):
            names += [f"ipd_cos{c}", f"ipd_sin{c}"]
    return tuple(names)


def level_differences(per_channel: list[torch.Tensor]) -> list[torch.Tensor]:
    """ILD: ``[values[c] - values[0] for c >= 1]``, each ``(B, F, T)`` like its inputs."""
    return [values - per_channel[0] for values in per_channel[1:]]


def phase_difference(
    spectrum: torch.Tensor, reference: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos`` and ``sin`` of ``angle(spectrum) - angle(reference)`` on linear bins.

    spectrum, reference: ``(B, T, K)`` complex STFTs. Returns two ``(B, K, T)`` float32 tensors,
    both 0 where the cross-spectrum ``spectrum * conj(reference)`` is 0.
    """
    cross = spectrum * reference.conj()
    magnitude = cross.abs()
    tiny = torch.finfo(magnitude.dtype).tiny
    scale = torch.where(magnitude > 0, magnitude.clamp_min(tiny).reciprocal(), 0.0)
    cos = (cross.real * scale).transpose(1, 2)
    sin = (cross.imag * scale).transpose(1, 2)
    return cos, sin


def pooling_weights(bank: torch.Tensor) -> torch.Tensor:
    """``(K, F)`` filter bank with each column scaled to sum to 1 (all-zero columns stay 0)."""
    totals = bank.sum(dim=0, keepdim=True)
    return torch.where(totals > 0, bank / totals.clamp_min(torch.finfo(bank.dtype).tiny), 0.0)


def pool_onto_bins(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``(B, K, T)`` linear-bin values → ``(B, F, T)`` with ``(K, F)`` :func:`pooling_weights`."""
    return torch.matmul(weights.T, values)
