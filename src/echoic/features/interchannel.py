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
- ``"gcc"``: GCC-PHAT, the inverse FFT of that unit cross-spectrum (the frontend's ``n_fft``
  points), read at the ``F`` integer lags ``-F//2 … F - F//2 - 1`` samples: bin ``i`` holds lag
  ``i - F//2``, so a channel delayed by ``d`` samples peaks at bin ``F//2 + d`` (DCASE SELD
  baselines stack GCC on the mel axis the same way). Values in [-1, 1]; needs ``n_fft >= F``.
  ``C - 1`` channels ``gcc1 …``.
- ``"iv"`` (4-channel first-order ambisonics, channel 0 = W): the active intensity vector
  ``2 Re(conj(W) X_c) / (|W|² + Σ_c |X_c|²)`` per linear bin (0 where the energy is 0), pooled
  onto the mel bins like the IPD. For an SN3D plane wave from the unit direction ``u`` it equals
  ``u`` along each channel's axis, whatever the channel order (ACN ``W, Y, Z, X`` gives
  ``iv1, iv2, iv3 = u_y, u_z, u_x``; FuMa ``W, X, Y, Z`` gives ``u_x, u_y, u_z``); values in
  [-1, 1]. Needs exactly 4 channels. 3 channels ``iv1, iv2, iv3``.

Several cues join with ``+`` in the order ``ild``, ``ipd``, ``gcc``, ``iv`` (``"ild+ipd"``,
``"ipd+gcc"``, ``"iv"``, ``"ild+iv"``, …) and are appended in that order.

Mel pooling (rather than linear bins) keeps every channel on the same ``F`` bins, which
``Features.values`` ``(B, C, F, T)`` and a patch embedding over ``C`` channels require.
"""

from __future__ import annotations

import difflib
from typing import Any

import torch

from echoic.errors import ConfigError

CUES = ("ild", "ipd", "gcc", "iv")
"""Inter-channel cues, in the order they are appended (see the module docstring)."""

INTERCHANNEL = (
    "none",
    *("+".join(c for i, c in enumerate(CUES) if subset >> i & 1) for subset in range(1, 16)),
)
"""Choices of a spectral frontend config's ``interchannel`` field: ``"none"`` or cues joined by
``+`` in :data:`CUES` order."""

__all__ = [
    "CUES",
    "INTERCHANNEL",
    "channel_names",
    "check_channels",
    "cues",
    "gcc_phat",
    "intensity_vectors",
    "level_differences",
    "phase_difference",
    "pool_onto_bins",
    "pooling_weights",
    "spectral_cue_channels",
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
    parts = str(choice).split("+")
    if choice not in INTERCHANNEL and set(parts) <= set(CUES) and len(set(parts)) == len(parts):
        canonical = "+".join(c for c in CUES if c in parts)
        raise ConfigError(
            f"{name}.interchannel lists its cues in the order {', '.join(CUES)}; found "
            f"{choice!r}. Did you mean {canonical!r}?"
        )
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
    if "iv" in cues(choice) and channels != 4:
        raise ConfigError(
            f"{name}.interchannel={choice!r} takes intensity vectors of first-order ambisonics, "
            f"which needs channels=4 (W and three dipoles); found channels={channels}. Use 'ipd' "
            "or 'gcc' for other arrays."
        )


def cues(interchannel: str) -> tuple[str, ...]:
    """The cues of an ``interchannel`` choice, in order (``"none"``: none)."""
    return () if interchannel == "none" else tuple(interchannel.split("+"))


def spectral_cue_channels(cue: str, channels: int) -> int:
    """Feature channels a cue computed from complex spectra adds for ``channels`` audio channels."""
    return {"ipd": 2 * (channels - 1), "gcc": channels - 1, "iv": channels - 1}[cue]


def channel_names(channels: int, interchannel: str = "none") -> tuple[str, ...]:
    """Names of the channels of ``Features.values``, in order (see the module docstring)."""
    names = [f"channel{c}" for c in range(channels)]
    if channels < 2:
        return tuple(names)
    for cue in cues(interchannel):
        for c in range(1, channels):
            names += [f"ipd_cos{c}", f"ipd_sin{c}"] if cue == "ipd" else [f"{cue}{c}"]
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


def gcc_phat(spectrum: torch.Tensor, reference: torch.Tensor, n_lags: int) -> torch.Tensor:
    """GCC-PHAT of ``spectrum`` against ``reference`` at lags ``-n_lags//2 … n_lags - n_lags//2 - 1``.

    spectrum, reference: ``(B, T, K)`` complex one-sided STFTs of ``n = 2 (K - 1)`` points.
    Returns ``(B, n_lags, T)`` float32: bin ``i`` is lag ``i - n_lags // 2`` samples (positive when
    ``spectrum`` lags behind ``reference``).
    """
    n_fft = 2 * (spectrum.shape[-1] - 1)
    if n_lags > n_fft:
        raise ConfigError(
            f"GCC-PHAT reads {n_lags} lags (one per feature bin) from a {n_fft}-point FFT; it "
            f"needs n_fft >= {n_lags}. Raise the frontend's n_fft or lower its number of bins."
        )
    cos, sin = phase_difference(spectrum, reference)  # (B, K, T) each
    unit = torch.complex(cos, sin).transpose(1, 2)  # (B, T, K)
    correlation = torch.fft.irfft(unit, n=n_fft)  # (B, T, n_fft), lag l at index l mod n_fft
    lags = torch.arange(n_lags, device=correlation.device) - n_lags // 2
    return correlation[..., lags % n_fft].transpose(1, 2).contiguous()


def intensity_vectors(spectra: list[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    """Active intensity of first-order ambisonics, normalised by the energy, pooled onto bins.

    spectra: 4 ``(B, T, K)`` complex STFTs, W first; weights: ``(K, F)`` :func:`pooling_weights`.
    Returns ``(B, 3, F, T)``: ``2 Re(conj(W) X_c) / (|W|² + Σ |X_c|²)`` for the 3 other channels.
    """
    omni = spectra[0]
    energy = sum((s.real.square() + s.imag.square() for s in spectra), torch.zeros_like(omni.real))
    tiny = torch.finfo(energy.dtype).tiny
    scale = torch.where(energy > 0, 2.0 / energy.clamp_min(tiny), 0.0)
    out = []
    for dipole in spectra[1:]:
        active = (omni.real * dipole.real + omni.imag * dipole.imag) * scale  # Re(conj(W) X)
        out.append(pool_onto_bins(active.transpose(1, 2), weights))
    return torch.stack(out, dim=1)
