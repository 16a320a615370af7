"""Waveform encoder: a 1-D conv feature encoder + transformer (wav2vec 2.0 / HuBERT / data2vec layout).

``WavEncoder`` reads the waveform through the ``waveform`` frontend (``Features.values`` of
``(B, 1, S)``, or ``(B, C, 1, S)`` for ``C`` channels, one "frame" per sample):

1. a stack of strided valid convolutions (:class:`~echoic.layers.ConvFeatureEncoder`) gives one
   frame every ``stride`` samples, each reading ``receptive`` samples (wav2vec 2.0's seven layers:
   20 ms hop, 25 ms field at 16 kHz);
2. LayerNorm over the conv channels (``feature_norm``) → Linear to the model width (wav2vec 2.0's
   feature projection);
3. positions: a weight-normed grouped convolution over the frame axis added to the tokens
   (:class:`~echoic.layers.ConvPositionalEmbedding`; ``pos_conv_mode="stacked"``: data2vec audio's
   stack of plain convolutions, :class:`~echoic.layers.StackedConvPositionalEmbedding`); padded
   frames are zeroed before it, so valid outputs do not depend on how much padding a batch carries;
4. an optional CLS token, then ``depth`` transformer blocks — pre-LN with a final LayerNorm
   (``norm_first=True``, wav2vec 2.0 large "stable layer norm") or post-LN after an input
   LayerNorm (``norm_first=False``, wav2vec 2.0 / HuBERT / WavLM base, data2vec audio);
   ``rel_pos_buckets > 0`` adds WavLM's gated relative position bias: one bucketed table
   (:class:`~echoic.layers.RelativePositionBias`) computed once per forward from the tokens' grid
   positions and shared by every block, each block gating it with its own attention input.

The published families (wav2vec 2.0, HuBERT, WavLM, data2vec audio) are registered as sizes of
this encoder in :mod:`echoic.encoders.wav2vec2`; ``echoic convert`` maps their checkpoints onto it.

Tokens form a 1-D grid ``(1, n_time)``. Token ``t`` reads samples ``[t * stride, t * stride +
receptive)`` and is centred at their mean time; a frame whose receptive field reaches past an
item's length is padding (``EncoderSpec.partial_last = False``). With kept-token indices the
positional convolution runs over the full sequence before the hidden tokens are dropped (data2vec
2.0's order), so kept tokens carry the same positions as without dropping.

The registered sizes use ``conv_mode="layer_norm"`` (a per-frame norm): wav2vec 2.0 base's
``"group_norm"`` normalises each channel over the whole input, so its outputs depend on the chunk
length; it is available for converted checkpoints, with statistics over each item's valid samples
(so a padded item gives what it gives alone, unlike the reference on a padded batch).

Reconstruction targets (``token_targets``, MAE / SSAST): the ``stride`` samples centred on each
token (per channel), i.e. a partition of the waveform into one window per token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from echoic.encoders.base import (
    Encoder,
    EncoderSpec,
    TokenizedInput,
    check_keep_idx,
    merge_padding,
    time_token_padding,
)
from echoic.encoders.registry import ENCODERS
from echoic.errors import ConfigError
from echoic.layers import (
    Block,
    ConvFeatureEncoder,
    ConvPositionalEmbedding,
    PostNormBlock,
    PrefixTokens,
    RelativePositionBias,
    StackedConvPositionalEmbedding,
    padding_to_attn_mask,
)
from echoic.layers.conv_feature_encoder import conv_receptive, conv_stride
from echoic.types import EncoderOutput, Features

__all__ = ["WavConfig", "WavEncoder"]

WAV2VEC2_LAYERS = ((10, 5), (3, 2), (3, 2), (3, 2), (3, 2), (2, 2), (2, 2))
"""``(kernel, stride)`` of wav2vec 2.0's conv feature encoder (stride 320, field 400 samples)."""


@dataclass
class WavConfig:
    """Size and shape of a :class:`WavEncoder`.

    conv_layers: ``(dim, kernel, stride)`` per convolution. conv_mode: ``"layer_norm"`` after every
        convolution (batch-invariant) or ``"group_norm"`` after the first only (wav2vec 2.0 base).
    dim / depth / heads / mlp_ratio: the transformer. norm_first: pre-LN (True) or post-LN blocks.
    pos_conv_kernel / pos_conv_groups: the positional convolution (0 kernel = no positions).
    in_channels: audio channels. n_bins: always 1 (the waveform frontend's single bin).
    feature_norm: LayerNorm the conv features before the projection (HuBERT's
        ``feat_proj_layer_norm``). pos_conv_mode: ``"weight_norm"`` (one weight-normed convolution,
        wav2vec 2.0 / HuBERT / WavLM) or ``"stacked"`` (``pos_conv_layers`` plain convolutions with a
        parameter-free LayerNorm each, data2vec audio). rel_pos_buckets / rel_pos_max_distance:
        WavLM's gated relative position bias (0 buckets = none; needs ``cls_token=False``).
    """

    dim: int
    depth: int
    heads: int
    conv_layers: tuple[tuple[int, int, int], ...] = tuple((512, k, s) for k, s in WAV2VEC2_LAYERS)
    conv_mode: Literal["group_norm", "layer_norm"] = "layer_norm"
    conv_bias: bool = False
    mlp_ratio: float = 4.0
    norm_first: bool = True
    pos_conv_kernel: int = 128
    pos_conv_groups: int = 16
    cls_token: bool = True
    qkv_bias: bool = True
    norm_eps: float = 1e-5
    drop_path: float = 0.0
    in_channels: int = 1
    n_bins: int = 1
    feature_norm: bool = True
    pos_conv_mode: Literal["weight_norm", "stacked"] = "weight_norm"
    pos_conv_layers: int = 1
    rel_pos_buckets: int = 0
    rel_pos_max_distance: int = 800

    def __post_init__(self) -> None:
        self.conv_layers = tuple(tuple(int(v) for v in layer) for layer in self.conv_layers)  # type: ignore[misc]
        if self.depth < 1:
            raise ConfigError(f"WavConfig.depth must be >= 1; found {self.depth}.")
        if self.heads < 1 or self.dim % self.heads:
            raise ConfigError(
                f"WavConfig.dim={self.dim} must split evenly into heads={self.heads}; choose "
                f"heads dividing {self.dim}."
            )
        if self.n_bins != 1:
            raise ConfigError(
                f"WavConfig.n_bins must be 1 (the waveform frontend gives one bin); found "
                f"{self.n_bins}. Pair this encoder with frontend='waveform'."
            )
        if self.in_channels < 1:
            raise ConfigError(f"WavConfig.in_channels must be >= 1; found {self.in_channels}.")
        if self.pos_conv_mode not in ("weight_norm", "stacked"):
            raise ConfigError(
                f"WavConfig.pos_conv_mode must be 'weight_norm' (wav2vec 2.0) or 'stacked' "
                f"(data2vec audio); found {self.pos_conv_mode!r}."
            )
        if self.pos_conv_layers < 1 or (
            self.pos_conv_mode == "weight_norm" and self.pos_conv_layers != 1
        ):
            raise ConfigError(
                f"WavConfig.pos_conv_layers must be 1 with pos_conv_mode='weight_norm' and >= 1 "
                f"with 'stacked'; found {self.pos_conv_layers} ({self.pos_conv_mode!r})."
            )
        if self.rel_pos_buckets and self.cls_token:
            raise ConfigError(
                "WavConfig.rel_pos_buckets (WavLM's relative position bias) needs cls_token=False: "
                "a CLS token has no position on the frame grid."
            )

    @property
    def stride(self) -> int:
        """Samples between consecutive tokens."""
        return conv_stride(self.conv_layers)

    @property
    def receptive(self) -> int:
        """Samples one token reads."""
        return conv_receptive(self.conv_layers)

    def build(self) -> WavEncoder:
        return WavEncoder(self)

    def spec(self) -> EncoderSpec:
        """The Encoder protocol's declaration: 1-D frames with overlapping receptive fields."""
        return EncoderSpec(
            input="waveform",
            channels=self.in_channels,
            n_bins=1,
            width=self.dim,
            depth=self.depth,
            layout="frames",
            flatten="time_major",
            freq_tokens=1,
            stride=self.stride,
            receptive=self.receptive,
            partial_last=False,
            accepts_keep_idx=True,
            cls_tokens=1 if self.cls_token else 0,
            token_input_size=self.in_channels * self.stride,
        )


class WavEncoder(Encoder):
    """Waveform CNN + transformer: ``Features (B, 1, S)`` → ``EncoderOutput`` (``depth + 1``
    layers of ``(B, N, D)`` frame tokens)."""

    def __init__(self, config: WavConfig) -> None:
        super().__init__()
        self._config = config
        dim = config.dim
        self.feature_encoder = ConvFeatureEncoder(
            config.conv_layers, config.conv_mode, config.conv_bias, config.in_channels
        )
        conv_dim = self.feature_encoder.dim
        self.feature_norm: nn.Module = (
            nn.LayerNorm(conv_dim, eps=config.norm_eps) if config.feature_norm else nn.Identity()
        )
        self.feature_proj = nn.Linear(conv_dim, dim)
        self.pos_conv: ConvPositionalEmbedding | StackedConvPositionalEmbedding | None = None
        if config.pos_conv_kernel > 0 and config.pos_conv_mode == "weight_norm":
            self.pos_conv = ConvPositionalEmbedding(
                dim, config.pos_conv_kernel, config.pos_conv_groups
            )
        elif config.pos_conv_kernel > 0:
            self.pos_conv = StackedConvPositionalEmbedding(
                dim, config.pos_conv_kernel, config.pos_conv_groups, config.pos_conv_layers
            )
        self.rel_pos = (
            RelativePositionBias(config.heads, config.rel_pos_buckets, config.rel_pos_max_distance)
            if config.rel_pos_buckets
            else None
        )
        gate: Literal["input"] | None = "input" if self.rel_pos is not None else None
        self.prefix = PrefixTokens(dim, 1 if config.cls_token else 0)
        self.input_norm = None if config.norm_first else nn.LayerNorm(dim, eps=config.norm_eps)
        steps = max(config.depth - 1, 1)
        rates = [config.drop_path * i / steps for i in range(config.depth)]
        blocks: list[nn.Module] = []
        for rate in rates:
            if config.norm_first:
                blocks.append(
                    Block(
                        dim,
                        config.heads,
                        config.mlp_ratio,
                        config.qkv_bias,
                        config.norm_eps,
                        rate,
                        position_gate=gate,
                    )
                )
            else:
                blocks.append(
                    PostNormBlock(
                        dim,
                        config.heads,
                        config.mlp_ratio,
                        config.qkv_bias,
                        config.norm_eps,
                        drop_path=rate,
                        position_gate=gate,
                    )
                )
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(dim, eps=config.norm_eps) if config.norm_first else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Truncated-normal(0.02) linears, Kaiming-normal convolutions (wav2vec 2.0)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for module in self.feature_encoder.modules():
            if isinstance(module, nn.Conv1d):
                nn.init.kaiming_normal_(module.weight)

    # ----------------------------------------------------------------- protocol
    @property
    def config(self) -> WavConfig:
        return self._config

    @property
    def spec(self) -> EncoderSpec:
        return self._config.spec()

    def _waveform(self, features: Features) -> torch.Tensor:
        """``(B, C, S)`` samples of ``features`` (values ``(B, 1, S)`` or ``(B, C, 1, S)``)."""
        values = features.values
        channels = self._config.in_channels
        if values.ndim == 3 and values.shape[1] == 1 and channels == 1:
            return values
        if values.ndim == 4 and values.shape[1] == channels and values.shape[2] == 1:
            return values[:, :, 0]
        expected = "(B, 1, S)" if channels == 1 else f"(B, {channels}, 1, S)"
        raise ConfigError(
            f"{type(self).__name__} reads waveform features {expected} from the 'waveform' "
            f"frontend; found shape {tuple(values.shape)}. Pair it with frontend='waveform' "
            f"and {channels} channel(s)."
        )

    def token_padding(self, features: Features) -> torch.Tensor:
        """``(B, N)`` bool, True on tokens whose receptive field reaches past the item's end."""
        n_time = self.spec.time_steps(features.n_frames)
        return time_token_padding(self.spec, features.lengths.to(features.values.device), n_time)

    def token_targets(self, features: Features) -> torch.Tensor:
        """``(B, N, C * stride)`` the ``stride`` samples centred on each token, channel-major."""
        wave = self._waveform(features)
        c = self._config
        n_time = self.spec.time_steps(features.n_frames)
        offset = (c.receptive - c.stride) // 2
        windows = wave[..., offset : offset + n_time * c.stride]
        windows = windows.reshape(wave.shape[0], wave.shape[1], n_time, c.stride)
        return windows.permute(0, 2, 1, 3).reshape(wave.shape[0], n_time, -1)

    def add_positions(
        self, tokens: torch.Tensor, grid: tuple[int, int], padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(B, N, D)`` full-sequence tokens plus the convolutional positions (padding zeroed
        first, so it never leaks into valid tokens)."""
        if self.pos_conv is None:
            return tokens
        if isinstance(self.pos_conv, StackedConvPositionalEmbedding):
            return tokens + self.pos_conv(tokens, padding_mask)
        source = tokens
        if padding_mask is not None:
            source = tokens.masked_fill(padding_mask[..., None], 0.0)
        return tokens + self.pos_conv(source)

    def embed_tokens(
        self,
        features: Features,
        keep_idx: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
        add_positions: bool = True,
    ) -> TokenizedInput:
        """Frame tokens before the blocks: conv features → norm → projection (→ positions).

        Returns tokens ``(B, N, D)`` (``(B, K, D)`` with ``keep_idx``), their padding mask and the
        grid ``(1, N)``. ``padding_mask`` in: optional ``(B, N)`` extra tokens to treat as padding.
        """
        wave = self._waveform(features)
        n_samples = wave.shape[-1]
        if n_samples < self._config.receptive:
            raise ConfigError(
                f"{n_samples} samples are shorter than one token's receptive field "
                f"({self._config.receptive} samples); pad inputs to at least that length."
            )
        lengths = features.lengths.to(wave.device)
        frames = self.feature_encoder(wave, lengths).transpose(1, 2)  # (B, N, conv_dim)
        tokens = self.feature_proj(self.feature_norm(frames))
        grid = (1, int(tokens.shape[1]))
        pad = merge_padding(self.token_padding(features), padding_mask)
        tokens = tokens.masked_fill(pad[..., None], 0.0)
        if add_positions:
            tokens = self.add_positions(tokens, grid, pad)
        if keep_idx is not None:
            keep_idx = check_keep_idx(keep_idx, tokens.shape[0], grid[1])
            index = keep_idx[:, :, None].expand(-1, -1, tokens.shape[-1])
            tokens = torch.gather(tokens, 1, index)
            pad = torch.gather(pad, 1, keep_idx)
        return TokenizedInput(tokens, pad, grid)

    def forward_tokens(
        self,
        tokens: torch.Tensor,
        padding_mask: torch.Tensor | None,
        features: Features,
        token_index: torch.Tensor | None = None,
    ) -> EncoderOutput:
        """CLS + blocks (+ final norm) on prepared tokens ``(B, K, D)``; see :class:`EncoderOutput`."""
        batch, n_kept, _ = tokens.shape
        spec = self.spec
        grid = spec.grid(features.n_frames)
        bias = self._position_bias(token_index, n_kept)
        if token_index is None:
            if n_kept != grid[1]:
                raise ConfigError(
                    f"{n_kept} tokens given without token_index, but the input has {grid[1]}; "
                    "pass token_index (B, K) for a subset."
                )
            token_index = torch.arange(n_kept, device=tokens.device).expand(batch, n_kept)
        if padding_mask is None:
            padding_mask = torch.zeros(batch, n_kept, dtype=torch.bool, device=tokens.device)
        x = tokens if self.input_norm is None else self.input_norm(tokens)
        x, attn_pad = self.prefix(x, padding_mask)
        assert attn_pad is not None
        attn_mask = padding_to_attn_mask(attn_pad) if bool(attn_pad.any()) else None
        hidden = [x]
        for i, block in enumerate(self.blocks):
            x = block(x, attn_mask, bias=bias)
            last = i == len(self.blocks) - 1
            hidden.append(self.norm(x) if last and self.norm is not None else x)
        n_cls = self.prefix.n_tokens
        layers = [h[:, n_cls:] for h in hidden]
        cls_layers = [h[:, 0] for h in hidden] if n_cls else None
        time_index = token_index.long()
        centre_frames = spec.centre_frame(time_index.double())
        token_times_s = (features.first_centre_s + features.hop_s * centre_frames).float()
        return EncoderOutput(
            layers=layers,
            cls_layers=cls_layers,
            padding_mask=padding_mask,
            token_index=time_index,
            time_index=time_index,
            freq_index=torch.zeros_like(time_index),
            token_times_s=token_times_s,
            grid=grid,
            patch_hop_s=features.hop_s * spec.stride,
        )

    def _position_bias(self, token_index: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """WavLM's relative position bias, once for every block: ``(1, H, N, N)`` for the full
        grid in order, ``(B, H, K, K)`` at the grid positions of kept tokens; None without one."""
        if self.rel_pos is None:
            return None
        return self.rel_pos(n) if token_index is None else self.rel_pos.at_positions(token_index)


def _size(dim: int, depth: int, heads: int, conv_dim: int, pos_kernel: int, pos_groups: int):
    layers = tuple((conv_dim, k, s) for k, s in WAV2VEC2_LAYERS)
    return WavConfig(
        dim=dim,
        depth=depth,
        heads=heads,
        conv_layers=layers,
        pos_conv_kernel=pos_kernel,
        pos_conv_groups=pos_groups,
    )


ENCODERS.register("wav_test", lambda: _size(32, 2, 2, 32, 16, 4))
ENCODERS.register("wav_tiny", lambda: _size(192, 12, 3, 256, 128, 16))
# echoic's own size, as vit_small: vit_small's transformer (384 wide, 12 blocks, 6 heads, FFN 1536)
# on wav2vec 2.0's 512-channel conv front end
ENCODERS.register("wav_small", lambda: _size(384, 12, 6, 512, 128, 16))
# wav2vec 2.0 / data2vec 2.0 base: 512-channel conv front end, 768 wide, 12 blocks, 12 heads,
# FFN 3072, positional convolution of kernel 128 in 16 groups
ENCODERS.register("wav_base", lambda: _size(768, 12, 12, 512, 128, 16))
