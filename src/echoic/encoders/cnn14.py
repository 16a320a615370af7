"""PANNs' Cnn14 (Kong et al. 2020), the audio tower of Microsoft's CLAP 2022, as an encoder.

Cnn14 is a VGG-like CNN over a 64-bin log-mel in dB: a fixed per-bin normalisation (its ``bn0``,
a ``BatchNorm2d`` over the mel bins in evaluation mode), then six blocks of two 3 × 3
convolutions (no bias, "same" zero padding) each followed by batch norm and ReLU; blocks 1–5 end
in a 2 × 2 average pool, block 6 in none. Channels 64, 128, 256, 512, 1024, 2048.

Tokens. After five poolings the map is ``(T // 32, 64 // 32 = 2)`` cells of 2048 channels: the
token grid (``layout="patches"``, two frequency tokens per time step, time-major; a time step
every 32 frames, ``T // 32`` of them — each pooling drops an odd last frame, so a step exists only
when its 32 frames do). Layers have one width, so what :class:`~echoic.types.EncoderOutput`
carries is the last block on that grid: ``layers[0]`` the output of block 6's first convolution
(after its norm and ReLU) — everything before it is the token embedding — and ``layers[1]`` the
block's output, which CLAP averages over frequency and pools over time (max + mean) before its
``fc1`` and projection (clip-level heads, not part of the encoder). Blocks 1–5 (narrower, on finer
grids) are internal; :meth:`Cnn14Encoder.block_outputs` returns them.

Padding. A CNN with "same" padding sees zeros past an item's end; in a padded batch every
convolution's input is zeroed past each item's valid frames at its resolution (``n // 2^k``), so
an item gives exactly what it gives alone. The receptive field of a step is much wider than its
32 frames (it is centred on them); the spec declares the 32 frames, which gives the right centres.

``cnn14`` is the published size; ``cnn14_test`` a tiny one. The batch norms of the blocks are
ordinary ``BatchNorm2d`` (statistics updated when training), ``bn0`` stays fixed
(:class:`~echoic.layers.bin_norm.BinNorm`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from echoic.encoders.base import (
    Encoder,
    EncoderSpec,
    TokenizedInput,
    merge_padding,
)
from echoic.encoders.registry import ENCODERS
from echoic.errors import ConfigError
from echoic.layers.bin_norm import BinNorm
from echoic.layers.patch_layout import PatchLayout
from echoic.types import EncoderOutput, Features

__all__ = ["Cnn14Config", "Cnn14Encoder", "ConvBlock"]


@dataclass
class Cnn14Config:
    """Size of a :class:`Cnn14Encoder`: ``channels`` per block (each block but the last halves
    time and frequency), ``n_bins`` of the input, ``dropout`` after each block when training."""

    channels: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)
    n_bins: int = 64
    dropout: float = 0.2
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        if len(self.channels) < 1 or min(self.channels) < 1:
            raise ConfigError(f"Cnn14Config.channels must be >= 1 each; found {self.channels}.")
        if self.n_bins // self.stride < 1:
            raise ConfigError(
                f"Cnn14Config: {self.n_bins} bins leave no frequency cell after "
                f"{len(self.channels) - 1} poolings; expected at least {self.stride} bins."
            )

    @property
    def stride(self) -> int:
        """Frames (and bins) per cell of the last block: 2 ** (blocks - 1)."""
        return 2 ** (len(self.channels) - 1)

    def build(self) -> Cnn14Encoder:
        return Cnn14Encoder(self)

    def spec(self) -> EncoderSpec:
        return EncoderSpec(
            input="features",
            channels=1,
            n_bins=self.n_bins,
            width=self.channels[-1],
            depth=1,
            layout="patches",
            flatten="time_major",
            freq_tokens=self.n_bins // self.stride,
            stride=self.stride,
            receptive=self.stride,
            partial_last=False,
            accepts_keep_idx=False,
            cls_tokens=0,
            token_input_size=self.stride * self.stride,
        )


class ConvBlock(nn.Module):
    """Two 3 × 3 convolutions (no bias, zero "same" padding), each with batch norm and ReLU, on
    ``(B, C, T, F)`` maps; the input of each convolution is zeroed past each item's frames."""

    def __init__(self, in_channels: int, out_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels, eps=eps)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels, eps=eps)

    def first(self, x: torch.Tensor, padded: torch.Tensor | None) -> torch.Tensor:
        """``relu(bn1(conv1(x)))``; padded: ``(B, T)`` bool frames to zero first, or None."""
        return F.relu(self.bn1(self.conv1(_zero(x, padded))))

    def second(self, x: torch.Tensor, padded: torch.Tensor | None) -> torch.Tensor:
        return F.relu(self.bn2(self.conv2(_zero(x, padded))))


def _zero(x: torch.Tensor, padded: torch.Tensor | None) -> torch.Tensor:
    if padded is None:
        return x
    return x.masked_fill(padded[:, None, :, None], 0.0)


class Cnn14Encoder(Encoder):
    """Cnn14: ``Features (B, F, T)`` → ``EncoderOutput`` with 2 layers on the ``(F // 32, T // 32)``
    grid (module docstring)."""

    def __init__(self, config: Cnn14Config) -> None:
        super().__init__()
        self._config = config
        self.input_norm = BinNorm(config.n_bins, eps=config.norm_eps)
        widths = (1, *config.channels)
        self.blocks = nn.ModuleList(
            ConvBlock(widths[i], widths[i + 1], config.norm_eps) for i in range(len(widths) - 1)
        )
        stride = config.stride
        self.layout = PatchLayout(config.n_bins, (stride, stride), (stride, stride), "time_major")

    @property
    def config(self) -> Cnn14Config:
        return self._config

    @property
    def spec(self) -> EncoderSpec:
        return self._config.spec()

    @property
    def conv_blocks(self) -> list[ConvBlock]:
        """The blocks, typed."""
        return [block for block in self.blocks if isinstance(block, ConvBlock)]

    def token_padding(self, features: Features) -> torch.Tensor:
        lengths = features.lengths.to(features.values.device)
        return self.layout.token_padding(lengths, features.n_frames)

    def token_targets(self, features: Features) -> torch.Tensor:
        """``(B, N, 32 · 32)``: the input values of each token's 32 frames × 32 bins."""
        return self.layout.patchify(features.values)

    def _check(self, values: torch.Tensor) -> None:
        if values.ndim != 3 or values.shape[1] != self._config.n_bins:
            raise ConfigError(
                f"Cnn14 takes features (B, F, T) with F={self._config.n_bins}; found shape "
                f"{tuple(values.shape)}. Use the frontend the model was built with."
            )

    def block_outputs(self, features: Features) -> list[torch.Tensor]:
        """Every block's output ``(B, C_k, T_k, F_k)`` (after its pooling), padding zeroed."""
        return self._run(features)[1]

    def _normalised(self, values: torch.Tensor) -> torch.Tensor:
        """``(B, F, T)`` → ``(B, 1, T, F)`` after the per-bin norm, computed on the ``(B, F, T, 1)``
        view of a contiguous ``(B, 1, T, F)`` map as Cnn14's ``bn0`` is: the same kernel, so the
        same roundings (the ``(B, F, T)`` layout rounds differently by 1 ulp, 1e-4 after twelve
        wide convolutions)."""
        norm = self.input_norm
        x = values.transpose(1, 2)[:, None].contiguous().transpose(1, 3)
        x = F.batch_norm(
            x, norm.running_mean, norm.running_var, norm.weight, norm.bias, False, 0.0, norm.eps
        )
        return x.transpose(1, 3)

    def _run(
        self, features: Features, padding_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """``(first-convolution map of the last block, block outputs 1 … n-1, per-frame padding
        at the last resolution)``."""
        values = features.values
        self._check(values)
        x = self._normalised(values)
        lengths = features.lengths.to(values.device)
        outputs: list[torch.Tensor] = []
        *stem, last = self.conv_blocks
        for block in stem:
            padded = _frames_past(lengths, x.shape[2])
            x = block.second(block.first(x, padded), padded)
            x = F.avg_pool2d(x, 2)
            if self.training and self._config.dropout:
                x = F.dropout(x, self._config.dropout, training=True)
            lengths = torch.div(lengths, 2, rounding_mode="floor")
            outputs.append(_zero(x, _frames_past(lengths, x.shape[2])))
        padded = _frames_past(lengths, x.shape[2])
        if padding_mask is not None:  # tokens the caller marks as padding act like zeros too
            cells = self.layout.cells(padding_mask[..., None], self.grid(features.n_frames))
            padded = padded | cells[..., 0].all(dim=1)
        return last.first(x, padded), outputs, padded

    def embed_tokens(
        self,
        features: Features,
        keep_idx: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
        add_positions: bool = True,
    ) -> TokenizedInput:
        """Tokens ``(B, N, C)`` = the last block's first convolution on the ``(F', T')`` grid
        (time-major); Cnn14 has no positions to add and runs every token (no ``keep_idx``)."""
        if keep_idx is not None:
            raise ConfigError("Cnn14 convolves the whole grid: it takes no keep_idx.")
        grid = self.grid(features.n_frames)
        pad = merge_padding(self.token_padding(features), padding_mask)
        x, _, _ = self._run(features, padding_mask)
        return TokenizedInput(self._tokens(x, grid), pad, grid)

    def add_positions(
        self, tokens: torch.Tensor, grid: tuple[int, int], padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Cnn14 has no positional information to add: ``tokens`` unchanged."""
        return tokens

    def _tokens(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """``(B, C, T', F')`` map → ``(B, T' · F', C)`` tokens (the grid's cells only)."""
        n_freq, n_time = grid
        return x[:, :, :n_time, :n_freq].permute(0, 2, 3, 1).flatten(1, 2)

    def forward_tokens(
        self,
        tokens: torch.Tensor,
        padding_mask: torch.Tensor | None,
        features: Features,
        token_index: torch.Tensor | None = None,
    ) -> EncoderOutput:
        """The last block's second convolution on the full token grid (``token_index`` must be
        None): its input is zeroed on padded time steps, as the item's own zero padding."""
        if token_index is not None:
            raise ConfigError("Cnn14 convolves the whole grid: it takes no token_index.")
        batch, n_tokens, _ = tokens.shape
        grid = self.grid(features.n_frames)
        if n_tokens != grid[0] * grid[1]:
            raise ConfigError(f"{n_tokens} tokens given; the grid {grid} has {grid[0] * grid[1]}.")
        if padding_mask is None:
            padding_mask = torch.zeros(batch, n_tokens, dtype=torch.bool, device=tokens.device)
        x = tokens.unflatten(1, (grid[1], grid[0])).permute(0, 3, 1, 2)  # (B, C, T', F')
        padded = self.layout.cells(padding_mask[..., None], grid)[..., 0].all(dim=1)  # (B, T')
        out = self._tokens(self.conv_blocks[-1].second(x, padded), grid)
        token_index = torch.arange(n_tokens, device=tokens.device).expand(batch, n_tokens)
        time_index, freq_index = self.layout.coordinates(token_index, grid)
        spec = self.spec
        times = features.first_centre_s + features.hop_s * spec.centre_frame(time_index.double())
        return EncoderOutput(
            layers=[tokens, out],
            cls_layers=None,
            padding_mask=padding_mask,
            token_index=token_index,
            time_index=time_index,
            freq_index=freq_index,
            token_times_s=times.float(),
            grid=grid,
            patch_hop_s=features.hop_s * spec.stride,
        )


def _frames_past(lengths: torch.Tensor, n_frames: int) -> torch.Tensor:
    """``(B, n_frames)`` bool, True on frames at or past each item's length."""
    return torch.arange(n_frames, device=lengths.device)[None, :] >= lengths[:, None]


ENCODERS.register("cnn14", Cnn14Config)
ENCODERS.register("cnn14_test", lambda: Cnn14Config(channels=(4, 8, 8, 16, 16, 32)))
