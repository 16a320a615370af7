"""BEATs (Chen et al. 2022, "BEATs: Audio Pre-Training with Acoustic Tokenizers") on Kaldi fbank.

``BeatsEncoder`` reads 128-bin Kaldi fbank frames (``kaldi_fbank`` with the ``"beats"`` preset:
the waveform scaled by 32768, mean 15.41663, std 2 × 6.55582):

1. 16 × 16 patches → ``Linear`` to ``embed_dim`` (BEATs' ``Conv2d(1, 512, 16, stride 16)``, no
   bias in the public checkpoints) → LayerNorm → ``Linear`` to the model width when it differs
   (``post_extract_proj``). Only complete time patches are kept (the convolution drops a partial
   last one): a clip of ``T`` frames gives ``T // 16`` time steps of ``n_bins / 16`` tokens;
2. padded tokens zeroed, then convolutional positions added: a weight-normed grouped ``Conv1d``
   (kernel 128, 16 groups) + GELU over the flattened token sequence
   (:class:`~echoic.layers.ConvPositionalEmbedding`);
3. LayerNorm, then ``depth`` post-LN blocks with DeepNorm (``x = LN(alpha * x + f(x))``,
   ``alpha = (2 * depth) ** 0.25``) whose attention adds a bucketed relative position bias (320
   buckets up to 800 tokens, one table shared by every block) gated per head and query by the
   projected query (``position_gate="query"``; WavLM gates with the block input instead).

Token order. BEATs' fbank is ``(T, F)`` (time first), so its patch convolution outputs a
``(time, freq)`` grid that it flattens time-major: token ``t * n_freq + f``, as echoic's ViT. The
relative position bias and the convolutional positions run over that flattened index, so
neighbouring frequency patches are distance 1 apart and the same patch one time step later
``n_freq`` (8) apart. Inside a patch BEATs' kernel is ``(time, freq)``; echoic's patch pixels are
``(freq, time)`` (``df * 16 + dt``), so the converter transposes the kernel.

With kept-token indices the positions are computed over the full grid before the hidden tokens
are dropped (BEATs' pretraining encodes only the unmasked patches, with their grid positions), and
the relative bias is taken at the kept tokens' grid positions.
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
    ConvPositionalEmbedding,
    PostNormBlock,
    RelativePositionBias,
    deepnorm_coefficients,
    padding_to_attn_mask,
    patchify,
)
from echoic.types import EncoderOutput, Features

__all__ = ["BeatsConfig", "BeatsEncoder"]


@dataclass
class BeatsConfig:
    """Size and shape of a :class:`BeatsEncoder`.

    embed_dim: width of the patch embedding (BEATs: 512) before ``post_extract_proj``.
    patch_bias: the patch embedding has a bias (BEATs' ``conv_bias``; off in the public models).
    deep_norm: DeepNorm residual scaling ``alpha = (2 depth)^(1/4)`` in the post-LN blocks.
    norm_first: pre-LN blocks with a final LayerNorm instead (BEATs' ``layer_norm_first``;
        excludes ``deep_norm``; the LayerNorm then comes after the blocks, not before).
    rel_pos_buckets / rel_pos_max_distance: the relative position bias (0 buckets = none).
    gated_rel_pos: gate the bias per head and query (``gru_rel_pos``).
    """

    dim: int = 768
    depth: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0
    embed_dim: int = 512
    patch_bias: bool = False
    patch: tuple[int, int] = (16, 16)
    n_bins: int = 128
    pos_conv_kernel: int = 128
    pos_conv_groups: int = 16
    deep_norm: bool = True
    norm_first: bool = False
    rel_pos_buckets: int = 320
    rel_pos_max_distance: int = 800
    gated_rel_pos: bool = True
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        self.patch = (int(self.patch[0]), int(self.patch[1]))
        if self.depth < 1 or self.heads < 1 or self.dim % self.heads:
            raise ConfigError(
                f"BeatsConfig needs depth >= 1 and dim={self.dim} split evenly into "
                f"heads={self.heads}; found depth={self.depth}."
            )
        if min(self.patch) < 1 or self.n_bins % self.patch[0]:
            raise ConfigError(
                f"BeatsConfig.n_bins={self.n_bins} must be a multiple of the patch height "
                f"{self.patch[0]}."
            )
        if self.deep_norm and self.norm_first:
            raise ConfigError(
                "BeatsConfig: deep_norm applies to post-LN blocks (norm_first=False)."
            )
        if self.gated_rel_pos and not self.rel_pos_buckets:
            raise ConfigError("BeatsConfig.gated_rel_pos needs a relative position bias.")

    def build(self) -> BeatsEncoder:
        return BeatsEncoder(self)

    def spec(self) -> EncoderSpec:
        """2-D patches, time-major, complete time patches only."""
        patch_f, patch_t = self.patch
        return EncoderSpec(
            input="features",
            channels=1,
            n_bins=self.n_bins,
            width=self.dim,
            depth=self.depth,
            layout="patches",
            flatten="time_major",
            freq_tokens=self.n_bins // patch_f,
            stride=patch_t,
            receptive=patch_t,
            partial_last=False,
            accepts_keep_idx=True,
            cls_tokens=0,
            token_input_size=patch_f * patch_t,
        )


class BeatsEncoder(Encoder):
    """BEATs: ``Features (B, 128, T)`` → ``EncoderOutput`` with ``depth + 1`` layers of
    ``(B, 8 * (T // 16), D)`` patch tokens (layer 0: after positions and the LayerNorm)."""

    def __init__(self, config: BeatsConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.dim
        pixels = config.patch[0] * config.patch[1]
        self.patch_embed = nn.Linear(pixels, config.embed_dim, bias=config.patch_bias)
        self.patch_norm = nn.LayerNorm(config.embed_dim, eps=config.norm_eps)
        self.proj: nn.Module = (
            nn.Linear(config.embed_dim, dim) if config.embed_dim != dim else nn.Identity()
        )
        self.pos_conv = ConvPositionalEmbedding(dim, config.pos_conv_kernel, config.pos_conv_groups)
        self.norm = nn.LayerNorm(dim, eps=config.norm_eps)
        self.rel_pos = (
            RelativePositionBias(config.heads, config.rel_pos_buckets, config.rel_pos_max_distance)
            if config.rel_pos_buckets
            else None
        )
        gate: Literal["query"] | None = "query" if config.gated_rel_pos else None
        alpha, beta = deepnorm_coefficients(config.depth) if config.deep_norm else (1.0, 1.0)
        blocks: list[nn.Module] = []
        for _ in range(config.depth):
            if config.norm_first:
                blocks.append(
                    Block(
                        dim, config.heads, config.mlp_ratio, True, config.norm_eps, 0.0, None, gate
                    )
                )
            else:
                block = PostNormBlock(
                    dim, config.heads, config.mlp_ratio, True, config.norm_eps, alpha, 0.0, gate
                )
                if config.deep_norm:
                    block.deepnorm_init(beta)
                blocks.append(block)
        self.blocks = nn.ModuleList(blocks)

    @property
    def spec(self) -> EncoderSpec:
        return self.config.spec()

    # ----------------------------------------------------------------- protocol
    def token_padding(self, features: Features) -> torch.Tensor:
        """``(B, N)``, True on tokens of time patches that reach past the item's frames."""
        n_freq, n_time = self.grid(features.n_frames)
        lengths = features.lengths.to(features.values.device)
        per_time = time_token_padding(self.spec, lengths, n_time)
        return per_time[:, :, None].expand(-1, n_time, n_freq).reshape(per_time.shape[0], -1)

    def token_targets(self, features: Features) -> torch.Tensor:
        """``(B, N, 256)``: each complete patch's values, pixels ``df * 16 + dt``."""
        values = self._values(features)
        n_time = self.grid(values.shape[-1])[1]
        return patchify(values[..., : n_time * self.config.patch[1]], self.config.patch)

    def add_positions(
        self, tokens: torch.Tensor, grid: tuple[int, int], padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(B, N, D)`` full-grid tokens plus the convolutional positions over the flattened
        sequence (padded tokens zeroed first, as BEATs does, so they never leak)."""
        if padding_mask is not None:
            tokens = tokens.masked_fill(padding_mask[..., None], 0.0)
        return tokens + self.pos_conv(tokens)

    def embed_tokens(
        self,
        features: Features,
        keep_idx: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
        add_positions: bool = True,
    ) -> TokenizedInput:
        """Patch tokens ``(B, N, D)`` (``(B, K, D)`` with ``keep_idx``) before the LayerNorm and
        the blocks, their padding mask and the full grid."""
        targets = self.token_targets(features)
        grid = self.grid(features.n_frames)
        if grid[1] < 1:
            raise ConfigError(
                f"BEATs needs at least one complete {self.config.patch[1]}-frame patch; found "
                f"{features.n_frames} frames (0.175 s of audio at 16 kHz is the minimum)."
            )
        pad = merge_padding(self.token_padding(features), padding_mask)
        tokens = self.proj(self.patch_norm(self.patch_embed(targets)))
        tokens = tokens.masked_fill(pad[..., None], 0.0)
        if add_positions:
            tokens = self.add_positions(tokens, grid, pad)
        if keep_idx is not None:
            keep_idx = check_keep_idx(keep_idx, tokens.shape[0], tokens.shape[1])
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
        """LayerNorm + blocks (post-LN) or blocks + LayerNorm (pre-LN) on ``(B, K, D)`` tokens."""
        batch, n_kept, _ = tokens.shape
        grid = self.grid(features.n_frames)
        bias = None
        if self.rel_pos is not None:
            bias = (
                self.rel_pos(n_kept)
                if token_index is None
                else self.rel_pos.at_positions(token_index)
            )
        if token_index is None:
            if n_kept != grid[0] * grid[1]:
                raise ConfigError(
                    f"{n_kept} tokens given without token_index, but the grid {grid} has "
                    f"{grid[0] * grid[1]}; pass token_index (B, K) for a subset."
                )
            token_index = torch.arange(n_kept, device=tokens.device).expand(batch, n_kept)
        if padding_mask is None:
            padding_mask = torch.zeros(batch, n_kept, dtype=torch.bool, device=tokens.device)
        attn_mask = padding_to_attn_mask(padding_mask) if bool(padding_mask.any()) else None
        x = tokens if self.config.norm_first else self.norm(tokens)
        hidden = [x]
        for block in self.blocks:
            x = block(x, attn_mask, bias=bias)
            hidden.append(x)
        if self.config.norm_first:
            hidden[-1] = self.norm(x)
        token_index = token_index.long()
        time_index = torch.div(token_index, grid[0], rounding_mode="floor")
        patch_t = self.config.patch[1]
        centre_frames = self.spec.centre_frame(time_index.double())
        return EncoderOutput(
            layers=hidden,
            cls_layers=None,
            padding_mask=padding_mask,
            token_index=token_index,
            time_index=time_index,
            freq_index=token_index - time_index * grid[0],
            token_times_s=(features.first_centre_s + features.hop_s * centre_frames).float(),
            grid=grid,
            patch_hop_s=features.hop_s * patch_t,
        )

    def _values(self, features: Features) -> torch.Tensor:
        values = features.values
        if values.ndim != 3 or values.shape[1] != self.config.n_bins:
            raise ConfigError(
                f"BEATs reads mono fbank features (B, {self.config.n_bins}, T); found shape "
                f"{tuple(values.shape)}. Pair it with frontend='kaldi_fbank' and the 'beats' "
                "preset (echoic.features.kaldi.KALDI_FBANK_PRESETS)."
            )
        return values


ENCODERS.register(
    "beats_test",
    lambda: BeatsConfig(
        dim=32,
        depth=2,
        heads=2,
        embed_dim=24,
        pos_conv_kernel=16,
        pos_conv_groups=4,
        rel_pos_buckets=16,
        rel_pos_max_distance=40,
    ),
)
ENCODERS.register("beats", BeatsConfig)
