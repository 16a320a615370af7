"""The frontend contract (AudioBatch → Features), the frontend registry and ``build_frontend``.

Every frontend frames audio the Kaldi "snip edges" way: frame ``i`` covers samples
``[i * hop, i * hop + win)`` and an item of ``n`` valid samples has ``1 + (n - win) // hop`` frames
(0 when ``n < win``). A frame therefore only ever reads samples of its own item inside that item's
valid length, which makes every frontend batch-invariant: a clip padded inside a batch gives the
same features as the clip alone, and frames beyond an item's length are set to exactly 0.

Normalisation is ``values = (x - mean) / std`` with ``mean`` and ``std`` taken from the config.
Published checkpoints state theirs in other ways; expressed here:

- AST / SSAST / AudioMAE divide by *twice* the dataset std: ``(fbank + 4.2677393) / (2 * 4.5689974)``
  → ``mean=-4.2677393, std=2 * 4.5689974`` (Kaldi fbank, hanning window, waveform in [-1, 1]).
- BEATs computes the Kaldi fbank of ``waveform * 2**15`` and divides by ``2 * 6.55582``
  → ``waveform_scale=32768, mean=15.41663, std=2 * 6.55582`` (povey window).

See :data:`echoic.features.kaldi.KALDI_FBANK_PRESETS`.

Channels. A frontend whose config has ``channels = C > 1`` takes ``(B, C, S)`` audio and gives
``(B, C', F, T)`` values: channel ``c`` is computed exactly as the mono path computes the ``(B, S)``
waveform ``audio[:, c]`` (bit for bit), and the config's ``interchannel`` option may append level /
phase differences, GCC-PHAT or ambisonic intensity vectors (:mod:`echoic.features.interchannel`),
so ``C' = out_channels``. Mono (the
default) keeps ``(B, S)`` → ``(B, F, T)``.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from typing import Any, ClassVar, overload

import torch

from echoic.config import from_dict, to_dict
from echoic.errors import ConfigError
from echoic.features.cmvn import utterance_cmvn
from echoic.features.interchannel import (
    channel_names,
    cues,
    gcc_phat,
    intensity_vectors,
    level_differences,
    phase_difference,
    pool_onto_bins,
    spectral_cue_channels,
)
from echoic.registry import Registry
from echoic.types import AudioBatch, Features

FRONTENDS: Registry[tuple[type[Any], type[Frontend]]] = Registry(
    "frontend", discover_package="echoic.features"
)
"""name → ``(ConfigClass, FrontendClass)``; modules of ``echoic.features`` register themselves."""


def snip_edges_num_frames(n_samples: int, win_length: int, hop_length: int) -> int:
    """Frames of ``win_length`` every ``hop_length`` samples that fit fully in ``n_samples``."""
    if n_samples < win_length:
        return 0
    return 1 + (n_samples - win_length) // hop_length


class Frontend(torch.nn.Module):
    """Base class of every frontend: ``AudioBatch`` ``(B, S)`` → ``Features`` ``(B, F, T)``
    (``(B, C, S)`` → ``(B, out_channels, F, T)`` when the config has ``channels = C > 1``).

    Subclasses set ``name``, implement ``n_bins``, ``win_length``, ``hop_length`` (in samples) and
    ``compute(waveform, n_frames)``; the base class checks the batch, counts frames per item,
    computes each channel, normalises with the config's ``mean``/``std`` and zeroes the padded
    frames. Inter-channel phase cues (IPD, GCC, intensity) also need ``complex_spectrum`` and
    ``phase_pooling``.
    """

    name: ClassVar[str] = ""
    output_kind: ClassVar[str] = "features"
    """What the frontend gives: ``"features"`` (spectral frames) or ``"waveform"`` (samples)."""
    cpu_chunk_frames: ClassVar[int] = 1024
    """Frames (summed over the batch) computed per step on CPU; other devices use one step."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        if float(config.std) <= 0:
            raise ConfigError(
                f"{type(config).__name__}.std must be > 0; found {config.std}. "
                "Use std=1.0 for no scaling."
            )

    # -- geometry ------------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        """Samples per second the frontend expects."""
        return int(self.config.sample_rate)

    @property
    def n_bins(self) -> int:
        """Number of feature bins ``F``."""
        raise NotImplementedError

    @property
    def channels(self) -> int:
        """Audio channels the frontend takes (``config.channels``, default 1 = mono)."""
        return int(getattr(self.config, "channels", 1))

    @property
    def interchannel(self) -> str:
        """Inter-channel features appended to the channels (``config.interchannel``, default none)."""
        return str(getattr(self.config, "interchannel", "none"))

    @property
    def channel_names(self) -> tuple[str, ...]:
        """What each channel of ``Features.values`` holds: ``channel0 …``, then ``ild1 …``, then
        ``ipd_cos1, ipd_sin1, …`` (see :mod:`echoic.features.interchannel`)."""
        return channel_names(self.channels, self.interchannel)

    @property
    def out_channels(self) -> int:
        """Channels of ``Features.values`` (what an encoder's ``spec.channels`` must equal):
        ``channels`` plus the inter-channel features; 1 means mono ``(B, F, T)`` values."""
        return len(self.channel_names)

    @property
    def win_length(self) -> int:
        """Samples per frame."""
        raise NotImplementedError

    @property
    def hop_length(self) -> int:
        """Samples between consecutive frames."""
        raise NotImplementedError

    @property
    def hop_s(self) -> float:
        """Seconds between consecutive frames."""
        return self.hop_length / self.sample_rate

    @property
    def first_centre_s(self) -> float:
        """Time of the centre of frame 0: the mean time of its samples, ``(win - 1) / 2 / sr``."""
        return (self.win_length - 1) / 2 / self.sample_rate

    @property
    def min_samples(self) -> int:
        """Samples needed for one frame."""
        return self.win_length

    @overload
    def num_frames(self, n_samples: int) -> int: ...

    @overload
    def num_frames(self, n_samples: torch.Tensor) -> torch.Tensor: ...

    def num_frames(self, n_samples: int | torch.Tensor) -> int | torch.Tensor:
        """Frames for ``n_samples`` valid samples (an int, or an int tensor of any shape)."""
        win, hop = self.win_length, self.hop_length
        if isinstance(n_samples, torch.Tensor):
            n = n_samples.to(torch.int64)
            frames = 1 + torch.div(n - win, hop, rounding_mode="floor")
            return torch.where(n >= win, frames, torch.zeros_like(frames))
        return snip_edges_num_frames(int(n_samples), win, hop)

    # -- computation ---------------------------------------------------------------------------
    def compute(self, waveform: torch.Tensor, n_frames: int) -> torch.Tensor:
        """Unnormalised features of the first ``n_frames`` frames.

        waveform: ``(B, S)`` float32 with ``S >= (n_frames - 1) * hop + win``.
        Returns ``(B, F, n_frames)`` float32.
        """
        raise NotImplementedError

    def complex_spectrum(self, waveform: torch.Tensor, n_frames: int) -> torch.Tensor:
        """``(B, S)`` → ``(B, n_frames, K)`` complex STFT of the frames as this frontend windows
        them (inter-channel phase differences are taken from it)."""
        raise NotImplementedError(
            f"{type(self).__name__} gives no complex spectrum, so the phase cues of "
            "interchannel ('ipd', 'gcc', 'iv') are not available for it; use 'none' or 'ild'."
        )

    def phase_pooling(self) -> torch.Tensor:
        """``(K, F)`` weights pooling linear-bin phase differences onto the ``F`` feature bins."""
        raise NotImplementedError(
            f"{type(self).__name__} does not pool phase differences; use interchannel='none'."
        )

    def check_batch(self, batch: AudioBatch) -> torch.Tensor:
        """The batch's float32 waveform, after checking rate, channels and lengths: ``(B, S)`` for
        a mono frontend (a ``(B, 1, S)`` batch is accepted), ``(B, C, S)`` for ``C`` channels."""
        if batch.sample_rate != self.sample_rate:
            raise ValueError(
                f"{type(self).__name__} expects audio at {self.sample_rate} Hz; found "
                f"{batch.sample_rate} Hz. Resample when loading, e.g. "
                f"echoic.data.load_audio(path, sample_rate={self.sample_rate})."
            )
        waveform = batch.waveform
        if self.channels > 1:
            found = 1 if waveform.ndim == 2 else int(waveform.shape[1])
            if found != self.channels:
                raise ValueError(
                    f"{type(self).__name__} is configured for {self.channels} channels and expects "
                    f"(B, {self.channels}, S) audio; found {found} channel(s), shape "
                    f"{tuple(waveform.shape)}. Load with load_audio(path, mono=False) and give it "
                    f"{self.channels} channels, or build the frontend with channels={found}."
                )
        elif waveform.ndim == 3:
            if waveform.shape[1] != 1:
                raise ValueError(
                    f"{type(self).__name__} expects mono audio (B, S); found {waveform.shape[1]} "
                    f"channels, shape {tuple(waveform.shape)}. Downmix first (waveform.mean(dim=1)) "
                    "or load with mono=True."
                )
            waveform = waveform[:, 0]
        lengths = batch.lengths
        if lengths.numel() and (int(lengths.min()) < 0 or int(lengths.max()) > waveform.shape[-1]):
            raise ValueError(
                f"AudioBatch.lengths must lie in [0, {waveform.shape[-1]}] (the padded length); "
                f"found min {int(lengths.min())}, max {int(lengths.max())}."
            )
        if waveform.is_complex() or not waveform.is_floating_point():
            raise ValueError(
                f"AudioBatch.waveform must be a real float tensor in [-1, 1]; found {waveform.dtype}. "
                "Convert integer PCM with waveform.float() / 32768."
            )
        return waveform.to(torch.float32)

    def forward(self, batch: AudioBatch) -> Features:
        """``AudioBatch`` ``(B, S)`` → ``Features`` ``(B, F, T)``, T = frames of the longest item;
        ``(B, C, S)`` → ``(B, out_channels, F, T)`` for a ``C``-channel frontend.

        On CPU the frames are computed in chunks of about ``cpu_chunk_frames`` frames (all items
        together), which keeps the intermediate spectra in cache: ~3x faster than one pass.
        """
        waveform = self.check_batch(batch)
        lengths = self.num_frames(batch.lengths.to(waveform.device))
        n_frames = int(lengths.max()) if lengths.numel() else 0
        batch_size = waveform.shape[0]
        if waveform.ndim == 2:
            values = self.in_chunks(waveform, n_frames, self.normalised, (batch_size, self.n_bins))
        else:
            values = self.multichannel(waveform, n_frames)
        if n_frames == 0:
            return Features(values, lengths, self.hop_s, self.first_centre_s)
        if getattr(self.config, "cmvn", False):  # per-utterance normalisation (features/cmvn.py)
            values = utterance_cmvn(values, lengths, float(self.config.cmvn_eps))
        padded = torch.arange(n_frames, device=values.device)[None, :] >= lengths[:, None]
        padded = padded[:, None, :] if values.ndim == 3 else padded[:, None, None, :]
        values = values.masked_fill_(padded, 0.0)
        return Features(values, lengths, self.hop_s, self.first_centre_s)

    def normalised(self, waveform: torch.Tensor, n_frames: int) -> torch.Tensor:
        """``(B, S)`` → ``(B, F, n_frames)``: :meth:`compute` then ``(x - mean) / std``."""
        chunk = self.compute(waveform, n_frames)
        mean, std = float(self.config.mean), float(self.config.std)
        if mean != 0.0:
            chunk = chunk.sub_(mean)
        if std != 1.0:
            chunk = chunk.div_(std)
        return chunk

    def in_chunks(
        self,
        waveform: torch.Tensor,
        n_frames: int,
        compute: Callable[[torch.Tensor, int], torch.Tensor],
        shape: tuple[int, ...],
    ) -> torch.Tensor:
        """``compute(segment, count)`` over ``n_frames`` frames of ``waveform`` ``(B, ..., S)``,
        in chunks of about ``cpu_chunk_frames`` frames on CPU (one chunk elsewhere).

        ``compute`` returns ``(*shape, count)`` for the ``count`` frames of its segment; the
        result is ``(*shape, n_frames)``.
        """
        values = waveform.new_zeros(*shape, n_frames)
        if n_frames == 0:
            return values
        hop, win = self.hop_length, self.win_length
        step = n_frames
        if waveform.device.type == "cpu":
            step = max(1, self.cpu_chunk_frames // max(1, waveform.shape[0]))
        for start in range(0, n_frames, step):
            count = min(step, n_frames - start)
            segment = waveform[..., start * hop : (start + count - 1) * hop + win]
            values[..., start : start + count] = compute(segment, count)
        return values

    def multichannel(self, waveform: torch.Tensor, n_frames: int) -> torch.Tensor:
        """``(B, C, S)`` → ``(B, out_channels, F, n_frames)``: each channel as the mono path
        computes it, then the configured inter-channel features (padded frames not yet zeroed)."""
        batch_size, channels = int(waveform.shape[0]), int(waveform.shape[1])
        shape: tuple[int, ...] = (batch_size, self.n_bins)
        per_channel = [
            self.in_chunks(waveform[:, c].contiguous(), n_frames, self.normalised, shape)
            for c in range(channels)
        ]
        extra: list[torch.Tensor] = []
        if "ild" in cues(self.interchannel):
            extra += level_differences(per_channel)
        spectral = [cue for cue in cues(self.interchannel) if cue != "ild"]
        if spectral:
            count = sum(spectral_cue_channels(cue, channels) for cue in spectral)
            shape = (batch_size, count, self.n_bins)
            extra += list(self.in_chunks(waveform, n_frames, self.spectral_cues, shape).unbind(1))
        return torch.stack(per_channel + extra, dim=1)

    def spectral_cues(self, waveform: torch.Tensor, n_frames: int) -> torch.Tensor:
        """``(B, C, S)`` → ``(B, count, F, n_frames)``: the configured cues read from the complex
        spectra of every channel, against channel 0 (:mod:`echoic.features.interchannel`)."""
        spectra = [
            self.complex_spectrum(waveform[:, c], n_frames) for c in range(waveform.shape[1])
        ]
        out: list[torch.Tensor] = []
        for cue in cues(self.interchannel):
            if cue == "ipd":
                weights = self.phase_pooling().to(waveform.dtype)
                for spectrum in spectra[1:]:
                    cos, sin = phase_difference(spectrum, spectra[0])
                    out += [pool_onto_bins(cos, weights), pool_onto_bins(sin, weights)]
            elif cue == "gcc":
                out += [gcc_phat(spectrum, spectra[0], self.n_bins) for spectrum in spectra[1:]]
            elif cue == "iv":
                weights = self.phase_pooling().to(waveform.dtype)
                out += list(intensity_vectors(spectra, weights).unbind(1))
        return torch.stack(out, dim=1)

    def to_dict(self) -> dict[str, Any]:
        """``{"name": ..., "config": {...}}``, JSON-ready; ``build_frontend(**d)`` rebuilds it."""
        return {"name": self.name, "config": to_dict(self.config)}

    def extra_repr(self) -> str:
        return f"name={self.name!r}, config={self.config}"


def build_frontend(name: str, config: dict[str, Any] | Any | None = None) -> Frontend:
    """Build the frontend registered as ``name``.

    ``config`` is a dict (unknown keys raise :class:`ConfigError` naming the nearest valid key),
    an instance of that frontend's config dataclass, or None for the defaults.
    """
    config_class, frontend_class = FRONTENDS.get(name)
    if config is None or isinstance(config, dict):
        config = from_dict(config_class, config, where=f"frontend {name!r}")
    elif not (dataclasses.is_dataclass(config) and isinstance(config, config_class)):
        raise ConfigError(
            f"frontend {name!r} expects a dict or a {config_class.__name__}; "
            f"found {type(config).__name__}. Pass build_frontend({name!r}, {{...}}) or "
            f"build_frontend({name!r}, {config_class.__name__}(...))."
        )
    return frontend_class(config)


def check_positive(config: Any, fields: tuple[str, ...]) -> None:
    """Raise a ConfigError naming the first of ``config``'s ``fields`` that is not > 0."""
    for field in fields:
        if int(getattr(config, field)) <= 0:
            raise ConfigError(
                f"{type(config).__name__}.{field} must be > 0; found {getattr(config, field)}."
            )


def check_choice(config: Any, field: str, valid: tuple[str | None, ...]) -> None:
    """Raise a ConfigError naming the nearest choice when ``config.field`` is not in ``valid``."""
    value = getattr(config, field)
    if value in valid:
        return
    names = [str(v) for v in valid]
    close = difflib.get_close_matches(str(value), names, n=1, cutoff=0.0)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"{type(config).__name__}.{field} must be one of {', '.join(names)}; found {value!r}.{hint}"
    )
