"""The Encoder protocol: what every encoder declares without being run, and how it is called.

An encoder maps :class:`~echoic.types.Features` to :class:`~echoic.types.EncoderOutput`. Its
input is either spectral features (``spec.input == "features"``: ``(B, F, T)`` frames of a
frontend) or the waveform (``"waveform"``: the ``waveform`` frontend gives ``(B, 1, S)``, one
"frame" per sample). Everything a caller needs to know about it — how wide and deep it is, how its
tokens are laid out, how far apart they are and how much input each one reads — is declared in an
:class:`EncoderSpec`, in units of *input frames*; :func:`token_geometry` turns that into samples
and seconds given the frontend's hop and window. Nothing outside an encoder reads its config
fields: the Embedder, the HEAR module, timestamps, extraction and the objectives use this protocol.

Token layout. Tokens sit on a grid ``(n_freq, n_time)``: ``layout="patches"`` for 2-D patch
models (``n_freq`` tokens per time step), ``"frames"`` for 1-D sequences (``n_freq == 1``).
``flatten`` says how the grid is flattened into the token axis: ``"time_major"``
(``token = time * n_freq + freq``) or ``"freq_major"`` (``token = freq * n_time + time``).
:class:`~echoic.types.EncoderOutput` carries ``time_index`` / ``freq_index`` per token, so
consumers that pool over frequency never rely on the flatten order.

Timing. Time step ``t`` of the grid reads input frames ``[t * stride, t * stride + receptive)``
(``stride = receptive = patch_t`` for non-overlapping patches; ``receptive > stride`` for CNNs
whose receptive fields overlap) and is centred on the mean time of those frames. Its output token
is padding when its first frame is at or beyond the item's length (``partial_last=True``: a partial
last patch is kept, as ViTs do) or when its receptive field does not fit in the item
(``partial_last=False``: convolutions without padding).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

import torch
from torch import nn

from echoic.errors import ConfigError
from echoic.types import EncoderOutput, Features

__all__ = [
    "Encoder",
    "EncoderSpec",
    "TokenGeometry",
    "TokenizedInput",
    "check_keep_idx",
    "merge_padding",
    "time_token_padding",
    "token_geometry",
]

InputKind = Literal["features", "waveform"]
Layout = Literal["frames", "patches"]
Flatten = Literal["time_major", "freq_major"]


@dataclass(frozen=True)
class EncoderSpec:
    """What an encoder declares about itself, without being run.

    input: ``"features"`` (spectral frames) or ``"waveform"`` (samples, via the waveform frontend).
    channels: input channels the encoder takes (1 = mono).
    n_bins: feature bins ``F`` it expects (1 for waveform input).
    width: model width ``D`` of every layer. depth: blocks; outputs have ``depth + 1`` layers.
    layout / flatten: see the module docstring. freq_tokens: tokens per time step (``n_freq``).
    stride / receptive: input frames between time steps, and read by one time step.
    partial_last: whether a last time step reaching past the input is kept (zero-filled).
    accepts_keep_idx: ``forward(features, keep_idx)`` runs only the kept tokens (MAE/EAT dropping).
    cls_tokens: summary tokens prepended before the blocks (``EncoderOutput.cls_layers``).
    token_input_size: input values one token covers (reconstruction targets, ``token_targets``).
    """

    input: InputKind
    channels: int
    n_bins: int
    width: int
    depth: int
    layout: Layout
    flatten: Flatten
    freq_tokens: int
    stride: int
    receptive: int
    partial_last: bool
    accepts_keep_idx: bool
    cls_tokens: int
    token_input_size: int

    def __post_init__(self) -> None:
        if self.layout == "frames" and self.freq_tokens != 1:
            raise ConfigError(
                f"an encoder with 1-D frame tokens has 1 token per time step; found "
                f"freq_tokens={self.freq_tokens}. Use layout='patches' for 2-D grids."
            )
        if self.stride < 1 or self.receptive < self.stride:
            raise ConfigError(
                f"token stride must be >= 1 and receptive field >= stride; found stride="
                f"{self.stride}, receptive={self.receptive}."
            )

    @property
    def n_layers(self) -> int:
        """Layers in every output: the token embedding plus one per block."""
        return self.depth + 1

    def time_steps(self, n_frames: int) -> int:
        """Time steps of the token grid for ``n_frames`` input frames."""
        if n_frames < 0:
            raise ConfigError(f"n_frames must be >= 0; found {n_frames}.")
        if self.partial_last:
            return math.ceil(n_frames / self.stride)
        if n_frames < self.receptive:
            return 0
        return 1 + (n_frames - self.receptive) // self.stride

    def grid(self, n_frames: int) -> tuple[int, int]:
        """``(n_freq, n_time)`` token grid of ``n_frames`` input frames."""
        return self.freq_tokens, self.time_steps(n_frames)

    def centre_frame(self, time_index: torch.Tensor) -> torch.Tensor:
        """Centre of time steps ``t`` in input frames: ``t * stride + (receptive - 1) / 2``."""
        return time_index * self.stride + (self.receptive - 1) / 2.0


def time_token_padding(spec: EncoderSpec, lengths: torch.Tensor, n_time: int) -> torch.Tensor:
    """``(B, n_time)`` bool, True on time steps that are padding for items of ``lengths`` frames."""
    first = torch.arange(n_time, device=lengths.device) * spec.stride
    if spec.partial_last:
        return first[None, :] >= lengths[:, None]
    return first[None, :] + spec.receptive > lengths[:, None]


def merge_padding(padding: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
    """``padding (B, N)`` OR-ed with the caller's ``extra (B, N)`` tokens to treat as padding."""
    if extra is None:
        return padding
    if extra.shape != padding.shape:
        raise ConfigError(
            f"padding_mask must cover the full token grid, shape {tuple(padding.shape)}; found "
            f"{tuple(extra.shape)}. Pass kept tokens through keep_idx instead."
        )
    return padding | extra.to(torch.bool)


def check_keep_idx(keep_idx: torch.Tensor, batch: int, n_tokens: int) -> torch.Tensor:
    """``keep_idx (B, K)`` as int64 after checking its shape, dtype and range."""
    if keep_idx.ndim != 2 or keep_idx.shape[0] != batch:
        raise ConfigError(
            f"keep_idx must be (B={batch}, K) token indices; found shape {tuple(keep_idx.shape)}."
        )
    if keep_idx.dtype not in (torch.int64, torch.int32):
        raise ConfigError(f"keep_idx must be an integer tensor; found {keep_idx.dtype}.")
    if torch.compiler.is_compiling() or not keep_idx.numel():
        return keep_idx.long()  # the range check reads values (a graph break when compiled)
    if int(keep_idx.min()) < 0 or int(keep_idx.max()) >= n_tokens:
        raise ConfigError(
            f"keep_idx values must lie in [0, {n_tokens}) for this input's grid; found "
            f"[{int(keep_idx.min())}, {int(keep_idx.max())}]."
        )
    return keep_idx.long()


@dataclass(frozen=True)
class TokenGeometry:
    """An encoder's token timing in samples and seconds, given its frontend's framing.

    Time step ``t`` reads samples ``[t * hop_samples, t * hop_samples + receptive_samples)`` and
    is centred at :meth:`centre_s` ``(t)``. ``frame_hop`` / ``frame_win``: the frontend's hop and
    window in samples (1 / 1 for waveform input).
    """

    spec: EncoderSpec
    sample_rate: int
    frame_hop: int
    frame_win: int
    frame_first_centre_s: float

    @property
    def hop_samples(self) -> int:
        return self.spec.stride * self.frame_hop

    @property
    def receptive_samples(self) -> int:
        return (self.spec.receptive - 1) * self.frame_hop + self.frame_win

    @property
    def min_samples(self) -> int:
        """Samples for one time step: one frame when a partial step is kept, else its field."""
        return self.frame_win if self.spec.partial_last else self.receptive_samples

    @property
    def hop_s(self) -> float:
        """Seconds between time steps."""
        return self.hop_samples / self.sample_rate

    def centre_s(self, time_index: torch.Tensor) -> torch.Tensor:
        """``(...)`` float64 centre times in seconds of time steps ``time_index`` (any shape)."""
        frame_hop_s = self.frame_hop / self.sample_rate
        return self.frame_first_centre_s + frame_hop_s * self.spec.centre_frame(
            time_index.to(torch.float64)
        )

    def num_time_steps(self, n_samples: int) -> int:
        """Time steps the encoder gives for ``n_samples`` valid samples."""
        if n_samples < self.frame_win:
            return self.spec.time_steps(0)
        return self.spec.time_steps(1 + (n_samples - self.frame_win) // self.frame_hop)

    def samples_for(self, n_steps: int) -> int:
        """Samples from the first sample of a time step through the input of ``n_steps`` steps."""
        frames = (n_steps - 1) * self.spec.stride + self.spec.receptive
        return (frames - 1) * self.frame_hop + self.frame_win


def token_geometry(
    spec: EncoderSpec, sample_rate: int, hop_length: int, win_length: int, first_centre_s: float
) -> TokenGeometry:
    """An encoder's spec combined with its frontend's framing (hop / window in samples, and the
    centre time of frame 0)."""
    return TokenGeometry(
        spec=spec,
        sample_rate=int(sample_rate),
        frame_hop=int(hop_length),
        frame_win=int(win_length),
        frame_first_centre_s=float(first_centre_s),
    )


class TokenizedInput(NamedTuple):
    """Tokens before the blocks. tokens: ``(B, N, D)`` (``(B, K, D)`` with kept-token indices);
    padding_mask: ``(B, N | K)`` bool, True on padding; grid: ``(n_freq, n_time)`` of the input.
    A tuple, so ``tokens, pad, grid = encoder.embed_tokens(features)`` works."""

    tokens: torch.Tensor
    padding_mask: torch.Tensor
    grid: tuple[int, int]


class Encoder(nn.Module, abc.ABC):
    """The base class of every encoder (``encoders/vit.py`` and ``encoders/wav.py`` are the
    examples). Its abstract methods are the protocol; mypy (``make test``) checks that a new
    encoder implements them with these signatures, and Python refuses to build one that does not.

    ``forward(features, keep_idx=None, padding_mask=None)`` is the usual call. The token-level
    pair ``embed_tokens`` → ``forward_tokens`` lets an objective edit tokens before the blocks
    (SSAST-style mask embeddings)::

        tokens, pad, grid = encoder.embed_tokens(features, add_positions=False)
        tokens = torch.where(masked[..., None], mask_embedding, tokens)
        tokens = encoder.add_positions(tokens, grid, pad)   # fixed table or convolution
        out = encoder.forward_tokens(tokens, pad, features)

    ``embed_tokens(features)`` with positions and ``forward_tokens`` on all tokens equals
    ``forward(features)`` (the default ``forward`` is exactly that). Kept-token indices
    (``keep_idx``) are only accepted when ``spec.accepts_keep_idx``.
    """

    @property
    @abc.abstractmethod
    def spec(self) -> EncoderSpec:
        """What this encoder is (usually ``self.config.spec()``)."""

    def grid(self, n_frames: int) -> tuple[int, int]:
        """``(n_freq, n_time)`` of the token grid for ``n_frames`` input frames."""
        return self.spec.grid(n_frames)

    @abc.abstractmethod
    def token_padding(self, features: Features) -> torch.Tensor:
        """``(B, N)`` bool over the full grid, True on tokens that cover only padding."""

    @abc.abstractmethod
    def token_targets(self, features: Features) -> torch.Tensor:
        """``(B, N, spec.token_input_size)`` the input values each token covers (MAE targets)."""

    @abc.abstractmethod
    def embed_tokens(
        self,
        features: Features,
        keep_idx: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
        add_positions: bool = True,
    ) -> TokenizedInput:
        """Tokens before the blocks (with positions unless ``add_positions=False``); with
        ``keep_idx (B, K)`` only those tokens, in that order."""

    @abc.abstractmethod
    def add_positions(
        self, tokens: torch.Tensor, grid: tuple[int, int], padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(B, N, D)`` full-grid tokens with the encoder's positional information added."""

    @abc.abstractmethod
    def forward_tokens(
        self,
        tokens: torch.Tensor,
        padding_mask: torch.Tensor | None,
        features: Features,
        token_index: torch.Tensor | None = None,
    ) -> EncoderOutput:
        """The blocks on prepared tokens ``(B, K, D)``; ``token_index (B, K)`` says where each
        sits on the full grid (None: the full grid in order)."""

    def forward(
        self,
        features: Features,
        keep_idx: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
    ) -> EncoderOutput:
        """Encode ``features``; ``keep_idx (B, K)`` runs only those tokens (token dropping)."""
        tokens, pad, _ = self.embed_tokens(features, keep_idx=keep_idx, padding_mask=padding_mask)
        return self.forward_tokens(tokens, pad, features, token_index=keep_idx)

    if TYPE_CHECKING:  # calling the module runs forward (through nn.Module's hooks)

        def __call__(
            self,
            features: Features,
            keep_idx: torch.Tensor | None = None,
            padding_mask: torch.Tensor | None = None,
        ) -> EncoderOutput: ...
