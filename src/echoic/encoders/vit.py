"""Vision-Transformer encoder over spectrogram patches (AST / SSAST / MAE / EAT style).

``ViTEncoder`` turns :class:`~echoic.types.Features` into :class:`~echoic.types.EncoderOutput`:
non-overlapping ``patch = (patch_f, patch_t)`` patches → ``Linear`` → + fixed 2-D sin-cos positions
→ optional CLS token → ``depth`` pre-LN blocks → final LayerNorm. Token order is time-major
(``token = time_patch * n_freq_patches + freq_patch``); token ``(t, f)`` is centred at
``first_centre_s + hop_s * (t * patch_t + (patch_t - 1) / 2)``. A token is padding when its first
frame is at or beyond the item's length; padding keys are masked out of attention, so valid outputs
do not depend on how much padding a batch carries.

Three ways in:

* ``forward(features, keep_idx=None)`` — the usual call. ``keep_idx (B, K)`` selects grid tokens
  that enter the transformer; the others never do (MAE / EAT token dropping).
* ``embed_tokens(features)`` then ``forward_tokens(tokens, padding_mask, features)`` — for
  objectives that edit tokens before the blocks. SSAST-style masking replaces masked tokens by a
  learned mask embedding plus the token's position::

      tokens, pad, grid = enc.embed_tokens(features, add_positions=False)
      tokens = torch.where(masked[..., None], mask_embedding, tokens)  # (B, N, D)
      tokens = enc.add_positions(tokens, grid, pad)
      out = enc.forward_tokens(tokens, pad, features)

These are the :class:`~echoic.encoders.base.Encoder` protocol; ``spec`` declares the rest.

Published layouts (AST, SSAST, Dasheng; sizes in ``encoders/ast.py``, ``encoders/dasheng.py``) are
options, all off by default (``ViTConfig``): strided patches (``patch_stride``,
:mod:`echoic.layers.patch_layout`), frequency-major order, learned positions
(:mod:`echoic.layers.grid_positions`), a distillation token, a per-bin input normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from echoic.encoders.base import (
    Encoder,
    EncoderSpec,
    TokenizedInput,
    check_keep_idx,
    merge_padding,
)
from echoic.encoders.patchout import PatchoutConfig, kept_index, patchout_dropped
from echoic.encoders.registry import ENCODERS, build_encoder
from echoic.errors import ConfigError
from echoic.features.base import check_choice
from echoic.layers import (
    Block,
    PatchEmbed,
    PostNormBlock,
    gather_tokens,
    padding_to_attn_mask,
    sincos_grid,
)
from echoic.layers.bin_norm import BinNorm
from echoic.layers.grid_positions import FITS, GridPositions
from echoic.layers.patch_layout import Flatten, PatchLayout, StridedPatchEmbed
from echoic.layers.positional import check_position_dim
from echoic.types import EncoderOutput, Features

__all__ = ["ENCODERS", "ViTConfig", "ViTEncoder", "build_encoder"]


@dataclass
class ViTConfig:
    """Size and shape of a :class:`ViTEncoder`.

    patch: ``(freq, time)`` patch size in bins × frames; ``(n_bins, 4)`` gives full-band frame
        tokens.
    n_bins: frequency bins of the input features (a multiple of ``patch[0]``).
    drop_path: stochastic-depth rate of the last block (rising linearly from 0 at the first).
    layer_scale: initial per-channel residual scale, or None for no layer-scale.
    in_channels: channels of the input features: 1 reads mono ``(B, F, T)`` values, ``C > 1``
        reads ``(B, C, F, T)`` (the frontend's ``out_channels``); patches hold ``C * patch_f *
        patch_t`` values, channel-major.
    patch_stride: ``(stride_f, stride_t)``: patches every so many bins and frames, as a ``Conv2d``
        without padding reads them (AST: ``(10, 10)`` with 16 × 16 patches); None (default):
        non-overlapping patches, a partial last time patch kept.
    flatten: token order, ``"time_major"`` (default) or ``"freq_major"`` (AST, SSAST, Dasheng).
    positions: ``"sincos"`` (default, fixed), ``"learned"`` (one ``position_grid`` table: AST,
        SSAST) or ``"learned_separable"`` (time + frequency tables: Dasheng).
    position_grid: ``(n_freq, n_time)`` of a learned table. position_fit: how it is fitted to other
        grids, ``"start"`` or ``"centre"`` (:mod:`echoic.layers.grid_positions`).
    dist_token: a second learned summary token after the CLS token (DeiT / AST distillation).
    input_norm: a fixed per-bin normalisation of the features before the patches (Dasheng).
    post_norm: post-LN blocks (``x = LN(x + attn(x))``, ``x = LN(x + mlp(x))``:
        :class:`~echoic.layers.PostNormBlock`) with ``norm`` applied to the tokens (summary tokens
        included) before the first block instead of after the last: data2vec 2.0's layout, EAT's.
    patchout: PaSST's training-time token dropping, ``{time: n, freq: n, random: p}``
        (:mod:`echoic.encoders.patchout`); None (default) or all zero: off.
    """

    dim: int
    depth: int
    heads: int
    mlp_ratio: float = 4.0
    patch: tuple[int, int] = (16, 16)
    n_bins: int = 128
    cls_token: bool = True
    qkv_bias: bool = True
    norm_eps: float = 1e-6
    drop_path: float = 0.0
    layer_scale: float | None = None
    in_channels: int = 1
    patch_stride: tuple[int, int] | None = None
    flatten: str = "time_major"
    positions: str = "sincos"
    position_grid: tuple[int, int] | None = None
    position_fit: str = "start"
    dist_token: bool = False
    input_norm: bool = False
    post_norm: bool = False
    patchout: PatchoutConfig | None = None

    def __post_init__(self) -> None:
        self.patch = (int(self.patch[0]), int(self.patch[1]))
        if isinstance(self.patchout, dict):
            self.patchout = PatchoutConfig(**self.patchout)
        if self.patch_stride is not None:
            self.patch_stride = (int(self.patch_stride[0]), int(self.patch_stride[1]))
        if self.position_grid is not None:
            self.position_grid = (int(self.position_grid[0]), int(self.position_grid[1]))
        if self.depth < 1:
            raise ConfigError(f"ViTConfig.depth must be >= 1; found {self.depth}.")
        if self.heads < 1 or self.dim % self.heads:
            raise ConfigError(
                f"ViTConfig.dim={self.dim} must split evenly into heads={self.heads}; choose "
                f"heads dividing {self.dim}."
            )
        self._check_layout_options()
        self.layout()  # validates patch, stride and n_bins (a multiple of patch[0] unless strided)
        if int(self.in_channels) != self.in_channels or self.in_channels < 1:
            raise ConfigError(
                f"ViTConfig.in_channels must be an integer >= 1 (1 = mono); found "
                f"{self.in_channels!r}."
            )

    def _check_layout_options(self) -> None:
        check_choice(self, "flatten", ("time_major", "freq_major"))
        check_choice(self, "positions", ("sincos", "learned", "learned_separable"))
        check_choice(self, "position_fit", FITS)
        if self.positions == "sincos":
            check_position_dim(self.dim)
        elif self.position_grid is None or min(self.position_grid) < 1:
            raise ConfigError(
                f"ViTConfig.positions={self.positions!r} needs position_grid=(n_freq, n_time), the "
                f"size of the learned table; found {self.position_grid!r}."
            )
        if self.post_norm and self.layer_scale is not None:
            raise ConfigError("ViTConfig.post_norm=True takes no layer_scale; set it to None.")
        if self.dist_token and not self.cls_token:
            raise ConfigError(
                "ViTConfig.dist_token=True needs cls_token=True (it follows the CLS)."
            )

    def layout(self) -> PatchLayout:
        """Where the patches are and how tokens are ordered."""
        flatten: Flatten = "freq_major" if self.flatten == "freq_major" else "time_major"
        return PatchLayout(self.n_bins, self.patch, self.patch_stride, flatten)

    def build(self) -> ViTEncoder:
        return ViTEncoder(self)

    def spec(self) -> EncoderSpec:
        """The Encoder protocol's declaration: 2-D patches (time-major and non-overlapping by
        default)."""
        patch_f, patch_t = self.patch
        channels = getattr(self, "in_channels", 1)
        layout = self.layout()
        return EncoderSpec(
            input="features",
            channels=channels,
            n_bins=self.n_bins,
            width=self.dim,
            depth=self.depth,
            layout="patches",
            flatten=layout.flatten,
            freq_tokens=layout.freq_tokens,
            stride=layout.time_stride,
            receptive=patch_t,
            partial_last=self.patch_stride is None,
            accepts_keep_idx=True,
            cls_tokens=int(self.cls_token) + int(self.dist_token),
            token_input_size=channels * patch_f * patch_t,
        )


class ViTEncoder(Encoder):
    """Spectrogram ViT: ``Features (B, F, T)`` (``(B, C, F, T)`` with ``in_channels = C > 1``) →
    ``EncoderOutput`` with ``depth + 1`` layers.

    ``forward(features, keep_idx=None, padding_mask=None)`` (the protocol's, inherited) =
    :meth:`embed_tokens` then :meth:`forward_tokens`: ``keep_idx (B, K)`` int64 indices into the
    full token grid run only those tokens (with their own positions), in that order;
    ``padding_mask (B, N)`` marks extra tokens as padding. Layer tensors may be views of a buffer
    holding the summary tokens too (non-contiguous); call ``.contiguous()`` if a kernel needs it.
    """

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self._config = config
        self.layout = config.layout()
        dim = config.dim
        self.input_norm = BinNorm(config.n_bins) if config.input_norm else None
        self.patch_embed: PatchEmbed | StridedPatchEmbed
        if config.patch_stride is None and config.flatten == "time_major":
            self.patch_embed = PatchEmbed(config.n_bins, config.patch, dim, config.in_channels)
        else:
            self.patch_embed = StridedPatchEmbed(self.layout, dim, config.in_channels)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if config.cls_token else None
        self.dist_token = nn.Parameter(torch.zeros(1, 1, dim)) if config.dist_token else None
        self.positions: GridPositions | None = None
        if config.positions != "sincos" and config.position_grid is not None:
            separable = config.positions == "learned_separable"
            grid = config.position_grid
            self.positions = GridPositions(*grid, dim, separable, config.position_fit)
        steps = max(config.depth - 1, 1)
        rates = [config.drop_path * i / steps for i in range(config.depth)]
        self.blocks = nn.ModuleList(
            PostNormBlock(
                dim,
                config.heads,
                config.mlp_ratio,
                config.qkv_bias,
                config.norm_eps,
                drop_path=rate,
            )
            if config.post_norm
            else Block(
                dim,
                config.heads,
                mlp_ratio=config.mlp_ratio,
                qkv_bias=config.qkv_bias,
                norm_eps=config.norm_eps,
                drop_path=rate,
                layer_scale=config.layer_scale,
            )
            for rate in rates
        )
        self.norm = nn.LayerNorm(dim, eps=config.norm_eps)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """ViT/MAE initialisation: truncated-normal(0.02) linears, Xavier patch projection."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.xavier_uniform_(self.patch_embed.proj.weight)
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        if self.dist_token is not None:
            nn.init.trunc_normal_(self.dist_token, std=0.02)

    # ----------------------------------------------------------------- properties
    @property
    def config(self) -> ViTConfig:
        return self._config

    @property
    def spec(self) -> EncoderSpec:
        """The Encoder protocol's declaration (:meth:`ViTConfig.spec`)."""
        return self._config.spec()

    @property
    def dim(self) -> int:
        return self._config.dim

    @property
    def depth(self) -> int:
        return self._config.depth

    @property
    def patch(self) -> tuple[int, int]:
        return self._config.patch

    @property
    def n_bins(self) -> int:
        return self._config.n_bins

    def grid(self, n_frames: int) -> tuple[int, int]:
        """``(n_freq_patches, n_time_patches)`` for ``n_frames`` input frames."""
        return self.layout.grid(n_frames)

    def num_tokens(self, n_frames: int) -> int:
        """Patch tokens (CLS excluded) produced for ``n_frames`` frames."""
        n_freq, n_time = self.grid(n_frames)
        return n_freq * n_time

    def token_padding(self, features: Features) -> torch.Tensor:
        """``(B, N)`` bool over the full grid, True on tokens whose first frame is padding (with
        strided patches: whose frames do not all lie inside the item)."""
        lengths = features.lengths.to(features.values.device)
        return self.layout.token_padding(lengths, features.n_frames)

    def _input(self, values: torch.Tensor) -> torch.Tensor:
        """Checked features, after the per-bin input normalisation where there is one."""
        self.patch_embed.check_values(values)  # (B, F, T), or (B, C, F, T) for in_channels = C
        return values if self.input_norm is None else self.input_norm(values)

    def token_targets(self, features: Features) -> torch.Tensor:
        """``(B, N, P)`` the feature values of each patch, in token order (MAE targets);
        ``P = in_channels * patch_f * patch_t``, channel-major."""
        return self.layout.patchify(self._input(features.values))

    def position_embedding(
        self,
        grid: tuple[int, int],
        device: torch.device | None = None,
        valid_steps: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(N, D)`` positions of a full ``grid`` in token order: the fixed sin-cos ones, or the
        learned table fitted to the grid — ``(B, N, D)`` when ``valid_steps (B,)`` (time steps
        per item) make them differ between items (:mod:`echoic.layers.grid_positions`)."""
        if self.positions is None:
            table = sincos_grid(grid[0], grid[1], self.dim, device=device)
            if self.layout.flatten == "time_major":
                return table
            return self.layout.order(table.unflatten(0, (grid[1], grid[0])).transpose(0, 1))
        return self.layout.order(self.positions(grid[0], grid[1], valid_steps))

    def add_positions(
        self, tokens: torch.Tensor, grid: tuple[int, int], padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(B, N, D)`` full-grid tokens plus the positions (learned ones fitted to each item's
        valid time steps, read from ``padding_mask``)."""
        steps = None
        if self.positions is not None and padding_mask is not None:
            steps = self.layout.valid_steps(padding_mask, grid)
        return tokens + self.position_embedding(grid, tokens.device, steps).to(tokens.dtype)

    # ----------------------------------------------------------------- pieces
    def _patchout(self, features: Features) -> torch.Tensor | None:
        """``(N,)`` bool, the tokens patchout drops from this batch (training only), or None."""
        if not self.training or self._config.patchout is None:
            return None
        grid = self.grid(features.n_frames)
        return patchout_dropped(self._config.patchout, self.layout, grid, features.values.device)

    def forward(
        self,
        features: Features,
        keep_idx: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
    ) -> EncoderOutput:
        """The protocol's forward; in training with ``patchout`` and no ``keep_idx``, only the
        tokens that survive patchout enter the blocks (the output is that subset)."""
        dropped = self._patchout(features) if keep_idx is None else None
        if dropped is None:
            return super().forward(features, keep_idx, padding_mask)
        keep_idx = kept_index(dropped, features.values.shape[0])
        tokens, pad, _ = self._embed(features, keep_idx, padding_mask, True)
        return self.forward_tokens(tokens, pad, features, token_index=keep_idx)

    def embed_tokens(
        self,
        features: Features,
        keep_idx: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
        add_positions: bool = True,
    ) -> TokenizedInput:
        """Patch tokens before the transformer.

        Returns ``tokens (B, N, D)`` (``(B, K, D)`` with ``keep_idx``), with positions added unless
        ``add_positions=False``; ``padding_mask (B, N | K)`` bool, True on padding; and the full
        ``grid``. ``padding_mask`` in: optional ``(B, N)`` extra tokens to treat as padding, OR-ed
        with the mask derived from ``features.lengths``. In training with ``patchout``, the
        dropped tokens are marked as padding too (:mod:`echoic.encoders.patchout`).
        """
        dropped = self._patchout(features)
        if dropped is not None:
            batch = features.values.shape[0]
            padding_mask = merge_padding(dropped[None].expand(batch, -1), padding_mask)
        return self._embed(features, keep_idx, padding_mask, add_positions)

    def _embed(
        self,
        features: Features,
        keep_idx: torch.Tensor | None,
        padding_mask: torch.Tensor | None,
        add_positions: bool,
    ) -> TokenizedInput:
        values = self._input(features.values)
        n_frames = values.shape[-1]
        if n_frames < 1:
            raise ConfigError("features have 0 frames; expected at least 1 frame per batch.")
        grid = self.grid(n_frames)
        n_tokens = grid[0] * grid[1]
        pad = self.layout.token_padding(features.lengths.to(values.device), n_frames)
        steps = self.layout.valid_steps(pad, grid) if self.positions is not None else None
        pad = merge_padding(pad, padding_mask)
        if keep_idx is not None:
            keep_idx = check_keep_idx(keep_idx, values.shape[0], n_tokens)
            pad = torch.gather(pad, 1, keep_idx)
        tokens = self.patch_embed(values, keep_idx)
        if add_positions:
            pos = self.position_embedding(grid, values.device, steps).to(tokens.dtype)
            if keep_idx is not None:
                pos = pos[keep_idx] if pos.ndim == 2 else gather_tokens(pos, keep_idx)
            tokens = tokens + pos
        return TokenizedInput(tokens, pad, grid)

    def forward_tokens(
        self,
        tokens: torch.Tensor,
        padding_mask: torch.Tensor | None,
        features: Features,
        token_index: torch.Tensor | None = None,
    ) -> EncoderOutput:
        """Run CLS (+ distillation token) + blocks + final norm on prepared tokens and describe them.

        tokens: ``(B, K, D)`` with positions already added. padding_mask: ``(B, K)`` bool or None.
        features: the input they came from (for grid and times). token_index: ``(B, K)`` grid
        position of each token; None means the full grid in order (``K == N``).
        """
        batch, n_kept, _ = tokens.shape
        grid = self.grid(features.n_frames)
        if token_index is None:
            if n_kept != grid[0] * grid[1]:
                raise ConfigError(
                    f"{n_kept} tokens given without token_index, but the grid {grid} has "
                    f"{grid[0] * grid[1]}; pass token_index (B, K) for a subset."
                )
            token_index = torch.arange(n_kept, device=tokens.device).expand(batch, n_kept)
        if padding_mask is None:
            padding_mask = torch.zeros(batch, n_kept, dtype=torch.bool, device=tokens.device)
        prefix = [t for t in (self.cls_token, self.dist_token) if t is not None]
        n_cls = len(prefix)
        x = tokens
        attn_pad = padding_mask
        if n_cls:
            summary = [t.expand(batch, -1, -1).to(tokens.dtype) for t in prefix]
            x = torch.cat([*summary, tokens], dim=1)
            attn_pad = torch.cat([padding_mask.new_zeros(batch, n_cls), padding_mask], dim=1)
        # Without any padding, no mask lets SDPA take its fastest kernel (eager only: the check
        # reads a value, which would break a torch.compile graph).
        attn_mask = None
        if torch.compiler.is_compiling() or bool(attn_pad.any()):
            attn_mask = padding_to_attn_mask(attn_pad)

        post_norm = self._config.post_norm
        if post_norm:  # the norm before the blocks; each post-LN block ends normalised
            x = self.norm(x)
        hidden = [x]
        for i, block in enumerate(self.blocks):
            x = block(x, attn_mask)
            hidden.append(self.norm(x) if i == len(self.blocks) - 1 and not post_norm else x)
        layers = [h[:, n_cls:] for h in hidden]
        cls_layers = [h[:, 0] for h in hidden] if n_cls else None
        dist_layers = [h[:, 1] for h in hidden] if self.dist_token is not None else None

        token_index = token_index.long()
        time_index, freq_index = self.layout.coordinates(token_index, grid)
        spec = self.spec
        token_times_s = features.first_centre_s + features.hop_s * spec.centre_frame(
            time_index.double()
        )
        return EncoderOutput(
            layers=layers,
            cls_layers=cls_layers,
            padding_mask=padding_mask,
            token_index=token_index,
            time_index=time_index,
            freq_index=freq_index,
            token_times_s=token_times_s.float(),
            grid=grid,
            patch_hop_s=features.hop_s * spec.stride,
            dist_layers=dist_layers,
        )


def _size(dim: int, depth: int, heads: int) -> ViTConfig:
    return ViTConfig(dim=dim, depth=depth, heads=heads, patch=(16, 16), n_bins=128)


ENCODERS.register("vit_test", lambda: _size(32, 2, 2))
ENCODERS.register("vit_tiny", lambda: _size(192, 12, 3))
ENCODERS.register("vit_small", lambda: _size(384, 12, 6))
ENCODERS.register("vit_base", lambda: _size(768, 12, 12))
