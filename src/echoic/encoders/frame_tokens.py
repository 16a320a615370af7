"""What the 1-D frame encoders of converted checkpoints share (TERA / Mockingjay, APC, NPC, BYOL-A).

These encoders read mono spectral frames ``(B, F, T)`` and give one token every ``stride`` frames
on a ``(1, n_time)`` grid, with no summary token and no kept-token indices: their spec, their input
check, their reconstruction targets and the :class:`~echoic.types.EncoderOutput` assembly
(token times from the spec, the only timing source) are the same, and live here, with
:class:`FrameEncoder`, the base class that gives them the protocol methods built from these.
"""

from __future__ import annotations

import abc
from typing import ClassVar, Generic, Protocol, TypeVar

import torch
import torch.nn.functional as F

from echoic.encoders.base import (
    Encoder,
    EncoderSpec,
    TokenizedInput,
    merge_padding,
    time_token_padding,
)
from echoic.errors import ConfigError
from echoic.types import EncoderOutput, Features

__all__ = [
    "FrameEncoder",
    "frame_output",
    "frame_padding",
    "frame_spec",
    "frame_targets",
    "frame_values",
]


def frame_spec(n_bins: int, width: int, depth: int, stride: int = 1) -> EncoderSpec:
    """1-D tokens every ``stride`` frames, each declared as reading those ``stride`` frames;
    ``stride > 1`` (pooling CNNs) drops a partial last step, as the pooling does."""
    return EncoderSpec(
        input="features",
        channels=1,
        n_bins=n_bins,
        width=width,
        depth=depth,
        layout="frames",
        flatten="time_major",
        freq_tokens=1,
        stride=stride,
        receptive=stride,
        partial_last=stride == 1,
        accepts_keep_idx=False,
        cls_tokens=0,
        token_input_size=n_bins * stride,
    )


def frame_values(features: Features, n_bins: int, family: str, frontend: str) -> torch.Tensor:
    """``(B, n_bins, T)`` values after checking their shape, zero past each item's length."""
    values = features.values
    if values.ndim != 3 or values.shape[1] != n_bins:
        raise ConfigError(
            f"the {family} encoder reads mono features (B, {n_bins}, T); found shape "
            f"{tuple(values.shape)}. Pair it with the frontend it was converted with ({frontend}, "
            f"{n_bins} bins)."
        )
    frames = torch.arange(values.shape[-1], device=values.device)
    valid = frames[None, :] < features.lengths.to(values.device)[:, None]
    return values.masked_fill(~valid[:, None, :], 0.0)


def frame_padding(
    spec: EncoderSpec,
    features: Features,
    keep_idx: torch.Tensor | None,
    padding_mask: torch.Tensor | None,
    family: str,
) -> torch.Tensor:
    """``(B, n_time)`` padding of ``features`` (with the caller's ``padding_mask``); these
    encoders take no kept-token indices."""
    if keep_idx is not None:
        raise ConfigError(
            f"the {family} encoder takes no kept-token indices (spec.accepts_keep_idx=False)."
        )
    lengths = features.lengths.to(features.values.device)
    own = time_token_padding(spec, lengths, spec.time_steps(features.n_frames))
    return merge_padding(own, padding_mask)


def frame_targets(spec: EncoderSpec, values: torch.Tensor) -> torch.Tensor:
    """``(B, N, F * stride)`` the frames of each token, bin-major (``values`` ``(B, F, T)``)."""
    b, f, t = values.shape
    n_time = spec.time_steps(t)
    values = F.pad(values, (0, max(0, n_time * spec.stride - t)))[..., : n_time * spec.stride]
    return values.reshape(b, f, n_time, spec.stride).permute(0, 2, 1, 3).reshape(b, n_time, -1)


def frame_output(
    spec: EncoderSpec,
    layers: list[torch.Tensor],
    padding_mask: torch.Tensor,
    features: Features,
) -> EncoderOutput:
    """The :class:`EncoderOutput` of ``layers`` (each ``(B, n_time, D)``) on a ``(1, n_time)`` grid."""
    batch, n_time = padding_mask.shape
    index = torch.arange(n_time, device=padding_mask.device).expand(batch, n_time)
    times = features.first_centre_s + features.hop_s * spec.centre_frame(index.double())
    return EncoderOutput(
        layers=layers,
        cls_layers=None,
        padding_mask=padding_mask,
        token_index=index,
        time_index=index,
        freq_index=torch.zeros_like(index),
        token_times_s=times.float(),
        grid=(1, n_time),
        patch_hop_s=features.hop_s * spec.stride,
    )


class FrameConfig(Protocol):
    """What :class:`FrameEncoder` reads of its config."""

    n_bins: int

    def spec(self) -> EncoderSpec: ...


ConfigT = TypeVar("ConfigT", bound=FrameConfig)


class FrameEncoder(Encoder, Generic[ConfigT]):
    """An encoder of 1-D frame tokens: its spec is its config's, its padding, targets and checked
    input values come from the functions above, and its layers carry order themselves
    (:meth:`add_positions` returns the tokens; an encoder with a position table overrides it).
    Subclasses set ``self.config`` and name themselves (``family``) and the frontend they read
    (``frontend``) for the errors."""

    family: ClassVar[str]
    frontend: ClassVar[str]
    config: ConfigT

    @property
    def spec(self) -> EncoderSpec:
        return self.config.spec()

    def token_padding(self, features: Features) -> torch.Tensor:
        return frame_padding(self.spec, features, None, None, self.family)

    def token_targets(self, features: Features) -> torch.Tensor:
        """``(B, N, n_bins · stride)``: the frames each token reads, bin-major."""
        return frame_targets(self.spec, self._values(features))

    def add_positions(
        self, tokens: torch.Tensor, grid: tuple[int, int], padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The layers carry order themselves: tokens unchanged."""
        return tokens

    def _padding(
        self,
        features: Features,
        keep_idx: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(B, n_time)`` padding of ``features`` merged with ``padding_mask``
        (:func:`frame_padding`: no kept-token indices)."""
        return frame_padding(self.spec, features, keep_idx, padding_mask, self.family)

    def embed_tokens(
        self,
        features: Features,
        keep_idx: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
        add_positions: bool = True,
    ) -> TokenizedInput:
        """Layer 0 ``(B, n_time, D)`` (:meth:`_first_layer`), with positions unless
        ``add_positions=False``; no kept-token indices."""
        pad = self._padding(features, keep_idx, padding_mask)
        tokens = self._first_layer(features)
        grid = (1, tokens.shape[1])
        if add_positions:
            tokens = self.add_positions(tokens, grid, pad)
        return TokenizedInput(tokens, pad, grid)

    def forward_tokens(
        self,
        tokens: torch.Tensor,
        padding_mask: torch.Tensor | None,
        features: Features,
        token_index: torch.Tensor | None = None,
    ) -> EncoderOutput:
        """Every layer (:meth:`_layers`) on layer 0's ``tokens``: whole sequences only (no
        ``token_index``); without a ``padding_mask``, :meth:`_default_padding`."""
        if token_index is not None:
            raise ConfigError(f"the {self.family} encoder runs full sequences (no token_index).")
        if padding_mask is None:
            padding_mask = self._default_padding(tokens, features)
        layers = self._layers(tokens, padding_mask, features)
        return frame_output(self.spec, layers, padding_mask, features)

    @abc.abstractmethod
    def _first_layer(self, features: Features) -> torch.Tensor:
        """Layer 0 ``(B, n_time, D)`` of ``features`` (before positions)."""

    @abc.abstractmethod
    def _layers(
        self, tokens: torch.Tensor, padding_mask: torch.Tensor, features: Features
    ) -> list[torch.Tensor]:
        """Every layer ``(B, n_time, D)``, layer 0 (from ``tokens``) first."""

    def _default_padding(self, tokens: torch.Tensor, features: Features) -> torch.Tensor:
        """The padding ``forward_tokens`` takes when given none: the features' own."""
        return self.token_padding(features)

    def _values(self, features: Features) -> torch.Tensor:
        """``(B, n_bins, T)`` checked input values, zero past each item's length
        (:func:`frame_values`)."""
        return frame_values(features, self.config.n_bins, self.family, self.frontend)
