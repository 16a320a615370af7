"""SSAMBA (Shams et al. 2024): a bidirectional-Mamba encoder over spectrogram patches.

``SSAMBAEncoder`` is the ViT's patch front end (non-overlapping ``patch = (patch_f, patch_t)``
patches, time-major tokens, fixed 2-D sin-cos positions, an optional leading CLS token) with the
transformer blocks replaced by bidirectional Mamba blocks (:mod:`echoic.layers.mamba`: Vision
Mamba's ``v2`` layout, parameter names of PyPI ``mambapy``) and a final norm. A block's cost is
linear in the number of tokens (the selective scan, :mod:`echoic.layers.selective_scan`), where
attention's is quadratic: on long audio it is cheaper than the ViT of the same width and depth
(``benchmarks/bench_long_input.py``).

It speaks the Encoder protocol exactly as the ViT does, so the objectives that train the ViT train
it: ``ssast`` (mask embeddings through ``embed_tokens`` → ``add_positions`` → ``forward_tokens``),
and ``mae`` / ``eat`` (kept tokens only, ``keep_idx``: the scan then runs over the visible tokens
in grid order, ascending as the maskers give them). Token order matters to a scan: it runs
time-major (all bands of a time step, then the next step), so padding time steps sit at the end
of every sequence and never reach a valid token (padding is skipped by the state, see
:mod:`echoic.layers.mamba`).

Differences from the SSAMBA code (Vim's ``VisionMamba``), all documented in ``docs/models.md``:
fixed sin-cos positions instead of a learned table for 1024 frames (any length works); time-major
instead of frequency-major token order; every block scans both ways (``bimamba v2``) without
Vim's extra pairing of blocks; the registered tiny size has the ViT-tiny's 12 blocks (SSAMBA's
scripts use 24) so that the two compare at equal width and depth.
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
from echoic.encoders.registry import ENCODERS
from echoic.errors import ConfigError
from echoic.layers import PatchEmbed, sincos_grid
from echoic.layers.mamba import MambaBlock, MambaMixer
from echoic.layers.patch_layout import PatchLayout
from echoic.layers.positional import check_position_dim
from echoic.types import EncoderOutput, Features

__all__ = ["SSAMBAConfig", "SSAMBAEncoder"]


@dataclass
class SSAMBAConfig:
    """Size and shape of a :class:`SSAMBAEncoder`.

    dim / depth: width and number of bidirectional Mamba blocks. d_state, expand, d_conv, dt_rank
    (None: ``ceil(dim / 16)``): the Mamba layer (:class:`~echoic.layers.mamba.MambaMixer`).
    patch / n_bins / in_channels / cls_token: as :class:`~echoic.encoders.vit.ViTConfig`.
    norm: ``"layer"`` (SSAMBA's recipe) or ``"rms"`` (mambapy / Vim default); norm_eps its eps.
    divide_output: halve the sum of the two directions (SSAMBA: ``if_devide_out``).
    drop_path: stochastic-depth rate of the last block (linear from 0).
    scan_chunk: steps per streamed block of the scan. fused: use ``mamba_ssm``'s CUDA kernel when
    it imports and the input is on a GPU.
    """

    dim: int
    depth: int
    d_state: int = 16
    expand: int = 2
    d_conv: int = 4
    dt_rank: int | None = None
    patch: tuple[int, int] = (16, 16)
    n_bins: int = 128
    in_channels: int = 1
    cls_token: bool = True
    norm: str = "layer"
    norm_eps: float = 1e-5
    divide_output: bool = True
    drop_path: float = 0.0
    scan_chunk: int = 64
    fused: bool = True

    def __post_init__(self) -> None:
        self.patch = (int(self.patch[0]), int(self.patch[1]))
        if self.depth < 1:
            raise ConfigError(f"SSAMBAConfig.depth must be >= 1; found {self.depth}.")
        if self.norm not in ("layer", "rms"):
            raise ConfigError(f"SSAMBAConfig.norm must be 'layer' or 'rms'; found {self.norm!r}.")
        if self.scan_chunk < 2:
            raise ConfigError(f"SSAMBAConfig.scan_chunk must be >= 2; found {self.scan_chunk}.")
        check_position_dim(self.dim)
        PatchLayout(self.n_bins, self.patch)  # n_bins a multiple of patch[0]

    def build(self) -> SSAMBAEncoder:
        return SSAMBAEncoder(self)

    def spec(self) -> EncoderSpec:
        """2-D time-major patches, kept-token indices accepted, like the default ViT."""
        patch_f, patch_t = self.patch
        return EncoderSpec(
            input="features",
            channels=self.in_channels,
            n_bins=self.n_bins,
            width=self.dim,
            depth=self.depth,
            layout="patches",
            flatten="time_major",
            freq_tokens=self.n_bins // patch_f,
            stride=patch_t,
            receptive=patch_t,
            partial_last=True,
            accepts_keep_idx=True,
            cls_tokens=int(self.cls_token),
            token_input_size=self.in_channels * patch_f * patch_t,
        )


class SSAMBAEncoder(Encoder):
    """Spectrogram patches → bidirectional Mamba blocks → ``EncoderOutput`` with ``depth + 1``
    layers (the embedded tokens, then every block; the last one normalised)."""

    def __init__(self, config: SSAMBAConfig) -> None:
        super().__init__()
        self.config = config
        self.layout = PatchLayout(config.n_bins, config.patch)
        self.patch_embed = PatchEmbed(config.n_bins, config.patch, config.dim, config.in_channels)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.dim)) if config.cls_token else None
        steps = max(config.depth - 1, 1)
        self.layers = nn.ModuleList(
            MambaBlock(
                MambaMixer(
                    config.dim,
                    d_state=config.d_state,
                    expand=config.expand,
                    d_conv=config.d_conv,
                    dt_rank=config.dt_rank,
                    divide_output=config.divide_output,
                    chunk=config.scan_chunk,
                    fused=config.fused,
                ),
                config.dim,
                norm=config.norm,
                norm_eps=config.norm_eps,
                drop_path=config.drop_path * i / steps,
            )
            for i in range(config.depth)
        )
        norm = nn.RMSNorm if config.norm == "rms" else nn.LayerNorm
        self.norm_f = norm(config.dim, eps=config.norm_eps)
        nn.init.xavier_uniform_(self.patch_embed.proj.weight)
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)

    @property
    def spec(self) -> EncoderSpec:
        return self.config.spec()

    def token_padding(self, features: Features) -> torch.Tensor:
        """``(B, N)`` bool, True on tokens whose first frame is past the item's length."""
        return self.layout.token_padding(
            features.lengths.to(features.values.device), features.n_frames
        )

    def token_targets(self, features: Features) -> torch.Tensor:
        """``(B, N, in_channels * patch_f * patch_t)`` patch values in token order."""
        self.patch_embed.check_values(features.values)
        return self.layout.patchify(features.values)

    def add_positions(
        self, tokens: torch.Tensor, grid: tuple[int, int], padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(B, N, D)`` full-grid tokens plus fixed 2-D sin-cos positions."""
        return tokens + sincos_grid(grid[0], grid[1], self.config.dim, tokens.device).to(
            tokens.dtype
        )

    def embed_tokens(
        self,
        features: Features,
        keep_idx: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
        add_positions: bool = True,
    ) -> TokenizedInput:
        """Patch tokens ``(B, N | K, D)`` (positions unless ``add_positions=False``), their padding
        ``(B, N | K)`` and the full grid; ``keep_idx (B, K)`` keeps those tokens in that order."""
        values = features.values
        if values.shape[-1] < 1:
            raise ConfigError("features have 0 frames; expected at least 1 frame per batch.")
        grid = self.layout.grid(values.shape[-1])
        pad = merge_padding(self.token_padding(features), padding_mask)
        if keep_idx is not None:
            keep_idx = check_keep_idx(keep_idx, values.shape[0], grid[0] * grid[1])
            pad = torch.gather(pad, 1, keep_idx)
        tokens = self.patch_embed(values, keep_idx)
        if add_positions:
            pos = sincos_grid(grid[0], grid[1], self.config.dim, values.device).to(tokens.dtype)
            tokens = tokens + (pos if keep_idx is None else pos[keep_idx])
        return TokenizedInput(tokens, pad, grid)

    def forward_tokens(
        self,
        tokens: torch.Tensor,
        padding_mask: torch.Tensor | None,
        features: Features,
        token_index: torch.Tensor | None = None,
    ) -> EncoderOutput:
        """CLS + Mamba blocks + final norm on prepared tokens ``(B, K, D)``; ``token_index (B, K)``
        their grid positions (None: the full grid in order)."""
        batch, n_kept, _ = tokens.shape
        grid = self.layout.grid(features.n_frames)
        if token_index is None:
            if n_kept != grid[0] * grid[1]:
                raise ConfigError(
                    f"{n_kept} tokens given without token_index, but the grid {grid} has "
                    f"{grid[0] * grid[1]}; pass token_index (B, K) for a subset."
                )
            token_index = torch.arange(n_kept, device=tokens.device).expand(batch, n_kept)
        if padding_mask is None:
            padding_mask = torch.zeros(batch, n_kept, dtype=torch.bool, device=tokens.device)
        x, pad = tokens, padding_mask
        n_cls = 0
        if self.cls_token is not None:
            n_cls = 1
            x = torch.cat([self.cls_token.expand(batch, -1, -1).to(x.dtype), x], dim=1)
            pad = torch.cat([pad.new_zeros(batch, 1), pad], dim=1)
        scan_pad = pad if bool(pad.any()) else None
        hidden = [x]
        for i, block in enumerate(self.layers):
            x = block(x, scan_pad)
            hidden.append(self.norm_f(x) if i == len(self.layers) - 1 else x)
        token_index = token_index.long()
        time_index, freq_index = self.layout.coordinates(token_index, grid)
        spec = self.spec
        times = features.first_centre_s + features.hop_s * spec.centre_frame(time_index.double())
        return EncoderOutput(
            layers=[h[:, n_cls:] for h in hidden],
            cls_layers=[h[:, 0] for h in hidden] if n_cls else None,
            padding_mask=padding_mask,
            token_index=token_index,
            time_index=time_index,
            freq_index=freq_index,
            token_times_s=times.float(),
            grid=grid,
            patch_hop_s=features.hop_s * spec.stride,
        )


ENCODERS.register("ssamba_test", lambda: SSAMBAConfig(dim=32, depth=2))
ENCODERS.register("ssamba_tiny", lambda: SSAMBAConfig(dim=192, depth=12))
