"""Whisper's audio encoder (Radford et al. 2022) on Whisper's log-mel (``whisper_logmel``).

``WhisperEncoder`` reads ``(B, n_bins, T)`` log-mel frames (10 ms hop, frame ``i`` centred on
sample ``160 i``): ``Conv1d(n_bins, D, 3, padding 1)`` → GELU → ``Conv1d(D, D, 3, stride 2,
padding 1)`` → GELU gives one token every two frames (20 ms); a fixed sinusoidal table of
``max_positions`` rows (Whisper's: ``[sin | cos]`` with timescales ``10000^(-k / (D/2 - 1))``,
kept as a buffer so a converted checkpoint's table is used as stored) is added; then ``depth``
pre-LN blocks and a final LayerNorm. No CLS token; 1-D tokens.

The 30-second window. Whisper was trained only on 30-s inputs: its table has 1500 rows and the
reference implementations refuse any other length; shorter audio is zero-padded to 30 s, and the
encoder attends to the padding (the log-mel of silence: the item's floor). echoic does the same
by default (``pad_to_max=True``): each item's frames are followed by its silence frame up to
``2 * max_positions`` frames, every token of that window is run and attended to, and the tokens
of the item's own frames are returned. The silence frame is what ``whisper_logmel`` gives to
digital silence: ``max(item maximum - silence_range, silence_floor)`` in normalised units (8 / 4
below the item's maximum, at least ``(log10(1e-10) + 4) / 4``). It equals Whisper's exactly when
the clip's last ``n_fft / 2`` samples (12.5 ms) are silent; otherwise Whisper's one or two frames
that straddle the clip's end (read by no returned token's centre frame) hold a little of the clip
where echoic has silence — an edge effect of the chunk's end, like the reflection at its start.
``pad_to_max=False`` runs only the item's own tokens with the first rows of the table and masks
batch padding out of attention: faster on short chunks, but not what Whisper saw in training.
Either way a chunk holds at most ``max_positions`` tokens (30 s): longer audio goes through the
Embedder in chunks (a converted model recommends ``chunk_s = 30``).

Timing. Token ``t`` is centred on frame ``2 t`` (its convolutions read frames ``2t - 2 … 2t + 2``).
The Encoder protocol has no offset, so the spec declares frames ``[2t, 2t + 2)``: token times are
5 ms later than Whisper's centres (a quarter of the 20-ms hop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from echoic.encoders.base import (
    Encoder,
    EncoderSpec,
    TokenizedInput,
    merge_padding,
    time_token_padding,
)
from echoic.encoders.registry import ENCODERS
from echoic.errors import ConfigError
from echoic.layers import Block, padding_to_attn_mask
from echoic.types import EncoderOutput, Features

__all__ = ["WHISPER_SIZES", "WhisperEncoder", "WhisperEncoderConfig", "whisper_sinusoids"]

WHISPER_SIZES: dict[str, tuple[int, int, int, int]] = {
    # size: (width, blocks, heads, mel bins) of the published encoders
    "tiny": (384, 4, 6, 80),
    "base": (512, 6, 8, 80),
    "small": (768, 12, 12, 80),
    "medium": (1024, 24, 16, 80),
    "large": (1280, 32, 20, 80),  # large, large-v2
    "large-v3": (1280, 32, 20, 128),  # large-v3, large-v3-turbo
}
"""Encoder sizes of the public Whisper checkpoints (all with a 1500-row table and 4x MLPs)."""


def whisper_sinusoids(length: int, dim: int, max_timescale: float = 10000.0) -> torch.Tensor:
    """``(length, dim)`` float32 Whisper positions: ``[sin | cos]`` of ``p * exp(-k * ln(10000) /
    (dim / 2 - 1))`` for ``k < dim / 2``."""
    if dim % 2 or dim < 4:
        raise ConfigError(f"Whisper positions need an even width >= 4; found {dim}.")
    increment = math.log(max_timescale) / (dim // 2 - 1)
    inverse = torch.exp(-increment * torch.arange(dim // 2, dtype=torch.float32))
    angles = torch.arange(length, dtype=torch.float32)[:, None] * inverse[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


@dataclass
class WhisperEncoderConfig:
    """Size and shape of a :class:`WhisperEncoder` (see the module docstring).

    max_positions: rows of the position table (1500 = 30 s of 20-ms tokens).
    pad_to_max: run every item in a full ``2 * max_positions``-frame window padded with its
        silence frame, as Whisper does (True), or only its own tokens (False).
    silence_range / silence_floor: the silence frame, ``max(item max - silence_range,
        silence_floor)`` in the frontend's normalised units (Whisper: 8 / 4 and -6 / 4).
    """

    dim: int = 512
    depth: int = 6
    heads: int = 8
    n_bins: int = 80
    max_positions: int = 1500
    mlp_ratio: float = 4.0
    norm_eps: float = 1e-5
    pad_to_max: bool = True
    silence_range: float = 2.0
    silence_floor: float = -1.5

    def __post_init__(self) -> None:
        if self.depth < 1 or self.max_positions < 1 or self.n_bins < 1:
            raise ConfigError(
                "WhisperEncoderConfig.depth, max_positions and n_bins must be >= 1; found "
                f"{self.depth}, {self.max_positions}, {self.n_bins}."
            )
        if self.heads < 1 or self.dim % self.heads or self.dim % 2:
            raise ConfigError(
                f"WhisperEncoderConfig.dim={self.dim} must be even and split evenly into "
                f"heads={self.heads}."
            )

    def build(self) -> WhisperEncoder:
        return WhisperEncoder(self)

    def spec(self) -> EncoderSpec:
        """1-D tokens every 2 frames, declared as reading frames ``[2t, 2t + 2)``."""
        return EncoderSpec(
            input="features",
            channels=1,
            n_bins=self.n_bins,
            width=self.dim,
            depth=self.depth,
            layout="frames",
            flatten="time_major",
            freq_tokens=1,
            stride=2,
            receptive=2,
            partial_last=True,
            accepts_keep_idx=False,
            cls_tokens=0,
            token_input_size=2 * self.n_bins,
        )


class WhisperEncoder(Encoder):
    """Whisper's encoder: ``Features (B, n_bins, T)`` → ``EncoderOutput`` (``depth + 1`` layers of
    ``(B, ceil(T / 2), D)``; layer 0 = convolutions + positions, the last after the final norm)."""

    def __init__(self, config: WhisperEncoderConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.dim
        self.conv1 = nn.Conv1d(config.n_bins, dim, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(dim, dim, kernel_size=3, stride=2, padding=1)
        self.positions: torch.Tensor
        self.register_buffer("positions", whisper_sinusoids(config.max_positions, dim))
        self.blocks = nn.ModuleList(
            Block(dim, config.heads, mlp_ratio=config.mlp_ratio, norm_eps=config.norm_eps)
            for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(dim, eps=config.norm_eps)

    @property
    def spec(self) -> EncoderSpec:
        return self.config.spec()

    # ----------------------------------------------------------------- protocol
    def token_padding(self, features: Features) -> torch.Tensor:
        n_time = self.spec.time_steps(features.n_frames)
        return time_token_padding(self.spec, features.lengths.to(features.values.device), n_time)

    def token_targets(self, features: Features) -> torch.Tensor:
        """``(B, N, 2 * n_bins)``: frames ``2t`` and ``2t + 1`` of each token (bin-major)."""
        values = self._values(features)
        n_time = self.spec.time_steps(values.shape[-1])
        values = F.pad(values, (0, 2 * n_time - values.shape[-1]))
        b, f, _ = values.shape
        return values.reshape(b, f, n_time, 2).permute(0, 2, 1, 3).reshape(b, n_time, 2 * f)

    def add_positions(
        self, tokens: torch.Tensor, grid: tuple[int, int], padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(B, N, D)`` tokens plus the first ``N`` rows of the position table."""
        return tokens + self.positions[: tokens.shape[1]].to(tokens.dtype)

    def embed_tokens(
        self,
        features: Features,
        keep_idx: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
        add_positions: bool = True,
    ) -> TokenizedInput:
        """The convolutions' tokens ``(B, ceil(T / 2), D)`` (with positions unless
        ``add_positions=False``), their padding and the grid ``(1, N)``."""
        n_time, pad = self._grid(features, keep_idx, padding_mask)
        tokens = self._convolve(self._window(features))[:, :n_time]
        if add_positions:
            tokens = self.add_positions(tokens, (1, n_time), pad)
        return TokenizedInput(tokens, pad, (1, n_time))

    def forward_tokens(
        self,
        tokens: torch.Tensor,
        padding_mask: torch.Tensor | None,
        features: Features,
        token_index: torch.Tensor | None = None,
    ) -> EncoderOutput:
        """Blocks + final norm on the tokens of ``embed_tokens``; with ``pad_to_max`` they are
        followed by the rest of each item's silence-padded window, recomputed from ``features``."""
        n_time = tokens.shape[1]
        if token_index is not None or n_time != self.spec.time_steps(features.n_frames):
            raise ConfigError(
                f"the Whisper encoder runs full sequences: {n_time} tokens given for "
                f"{self.spec.time_steps(features.n_frames)} time steps, token_index "
                f"{'given' if token_index is not None else 'None'}."
            )
        if self.config.pad_to_max:
            tail = self._convolve(self._window(features))[:, n_time:]
            tail = tail + self.positions[n_time : n_time + tail.shape[1]].to(tail.dtype)
            tokens = torch.cat([tokens, tail], dim=1)
        return self._blocks(tokens, n_time, padding_mask, features)

    def forward(
        self,
        features: Features,
        keep_idx: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
    ) -> EncoderOutput:
        """Encode ``features`` (the convolutions run once over the whole window)."""
        n_time, pad = self._grid(features, keep_idx, padding_mask)
        tokens = self._convolve(self._window(features))
        return self._blocks(self.add_positions(tokens, (1, n_time)), n_time, pad, features)

    def _grid(
        self, features: Features, keep_idx: torch.Tensor | None, padding_mask: torch.Tensor | None
    ) -> tuple[int, torch.Tensor]:
        """Time steps of ``features`` (checked against the table) and their padding."""
        if keep_idx is not None:
            raise ConfigError(
                "the Whisper encoder takes no kept-token indices (spec.accepts_keep_idx=False)."
            )
        n_time = self.spec.time_steps(features.n_frames)
        self._check_length(n_time)
        return n_time, merge_padding(self.token_padding(features), padding_mask)

    def _blocks(
        self,
        x: torch.Tensor,
        n_time: int,
        padding_mask: torch.Tensor | None,
        features: Features,
    ) -> EncoderOutput:
        """The blocks on ``x (B, N', D)``; the first ``n_time`` tokens are returned. With
        ``pad_to_max``, ``N' = max_positions`` and Whisper's whole window is attended to, silence
        included — only tokens a caller adds to the padding are hidden; else ``N' = N`` and every
        padded token is hidden."""
        batch = x.shape[0]
        if padding_mask is None:
            padding_mask = torch.zeros(batch, n_time, dtype=torch.bool, device=x.device)
        hidden_keys = padding_mask
        if self.config.pad_to_max:
            hidden_keys = padding_mask & ~self.token_padding(features)
            hidden_keys = F.pad(hidden_keys, (0, x.shape[1] - n_time), value=False)
        attn_mask = padding_to_attn_mask(hidden_keys) if bool(hidden_keys.any()) else None
        hidden = [x]
        for block in self.blocks:
            x = block(x, attn_mask)
            hidden.append(x)
        hidden[-1] = self.norm(x)
        layers = [h[:, :n_time] for h in hidden]
        index = torch.arange(n_time, device=x.device).expand(batch, n_time)
        centre_frames = self.spec.centre_frame(index.double())
        times = (features.first_centre_s + features.hop_s * centre_frames).float()
        return EncoderOutput(
            layers=layers,
            cls_layers=None,
            padding_mask=padding_mask,
            token_index=index,
            time_index=index,
            freq_index=torch.zeros_like(index),
            token_times_s=times,
            grid=(1, n_time),
            patch_hop_s=features.hop_s * self.spec.stride,
        )

    # ----------------------------------------------------------------- pieces
    def _values(self, features: Features) -> torch.Tensor:
        """``(B, n_bins, T)`` values, zero past each item's length (checked shape)."""
        values = features.values
        if values.ndim != 3 or values.shape[1] != self.config.n_bins:
            raise ConfigError(
                f"the Whisper encoder reads mono log-mel features (B, {self.config.n_bins}, T); "
                f"found shape {tuple(values.shape)}. Pair it with frontend='whisper_logmel' "
                f"(n_mels={self.config.n_bins})."
            )
        frames = torch.arange(values.shape[-1], device=values.device)
        valid = frames[None, :] < features.lengths.to(values.device)[:, None]
        return values.masked_fill(~valid[:, None, :], 0.0)

    def _check_length(self, n_time: int) -> None:
        if n_time > self.config.max_positions:
            seconds = self.config.max_positions * 0.02
            raise ConfigError(
                f"{n_time} tokens exceed the Whisper encoder's {self.config.max_positions} "
                f"positions (~{seconds:g} s of audio); embed longer audio in chunks of at most "
                f"{seconds:g} s (the Embedder's chunk_s)."
            )

    def _window(self, features: Features) -> tuple[torch.Tensor, torch.Tensor]:
        """The convolutions' input ``(B, n_bins, T')`` and each item's valid frame count: with
        ``pad_to_max`` the full window (``T' = 2 * max_positions``) with every frame past an item's
        length set to its silence frame; else the features as they are (``T' = T``)."""
        values = self._values(features)
        lengths = features.lengths.to(values.device)
        if not self.config.pad_to_max:
            return values, lengths
        n_frames = 2 * self.config.max_positions
        if values.shape[-1] > n_frames:
            self._check_length(self.spec.time_steps(values.shape[-1]))
        frames = torch.arange(n_frames, device=values.device)
        valid = frames[None, :] < lengths[:, None]
        full = F.pad(values, (0, n_frames - values.shape[-1]))
        peak = full.masked_fill(~valid[:, None, :], float("-inf")).amax(dim=(1, 2))
        silence = (peak - self.config.silence_range).clamp_min(self.config.silence_floor)
        full = torch.where(valid[:, None, :], full, silence[:, None, None].to(full.dtype))
        return full, torch.full_like(lengths, n_frames)

    def _convolve(self, window: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """``(B, ceil(T' / 2), D)`` tokens of the two convolutions; the first convolution's output
        is zeroed past each item's frames, so batch padding reads as the convolution's own zero
        padding (an item in a padded batch gives what it gives alone)."""
        values, lengths = window
        hidden = F.gelu(self.conv1(values))
        frames = torch.arange(hidden.shape[-1], device=hidden.device)
        hidden = hidden.masked_fill((frames[None, :] >= lengths[:, None])[:, None, :], 0.0)
        return F.gelu(self.conv2(hidden)).transpose(1, 2)


def _size(name: str) -> WhisperEncoderConfig:
    dim, depth, heads, n_bins = WHISPER_SIZES[name]
    return WhisperEncoderConfig(dim=dim, depth=depth, heads=heads, n_bins=n_bins)


ENCODERS.register(
    "whisper_test",
    lambda: WhisperEncoderConfig(dim=32, depth=2, heads=2, n_bins=80, max_positions=100),
)
# The family name (converted checkpoints store their full config under it) builds the smallest
# public size: each registered size runs the encoder contract test, and a Whisper window costs
# 1500 tokens whatever the audio. The other sizes are WHISPER_SIZES (via encoder overrides).
ENCODERS.register("whisper_encoder", lambda: _size("tiny"))
