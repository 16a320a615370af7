"""Bidirectional Mamba blocks (Vision Mamba's "v2" layout, as SSAMBA uses it).

:class:`MambaMixer` is one Mamba layer (Gu & Dao 2023): ``in_proj`` splits each token into a
branch ``x`` and a gate ``z``; ``x`` goes through a short depthwise causal ``conv1d``, SiLU and the
selective SSM (``x_proj`` gives the input-dependent ``delta``, ``B``, ``C``; ``dt_proj`` lifts
``delta`` to every channel; ``A_log`` and ``D`` are the state decay and the skip); the result is
gated by ``SiLU(z)`` and mapped back by ``out_proj``. With ``bidirectional=True`` a second SSM
(``conv1d_b``, ``x_proj_b``, ``dt_proj_b``, ``A_log_b``, ``D_b``) reads the reversed sequence and
the two outputs are summed (halved with ``divide_output``) before ``out_proj``; ``in_proj`` and
``out_proj`` are shared (Vim's ``bimamba_type="v2"``).

Parameter names and initialisation are those of PyPI ``mambapy`` 1.2.0 (``mambapy.vim``:
``VMambaBlock`` / ``ResidualBlock``), so its state dicts load unchanged
(``tests/layers/test_layers_mamba.py`` checks the outputs against it).

Padding: a token marked as padding is read as zeros by the convolution and gets ``delta = 0``, so
the state passes it unchanged (``exp(0 * A) = 1``, no input). Padding at the end of a sequence
therefore never reaches a valid token in either direction: a valid token's output does not depend
on how much padding its batch carries.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from echoic.errors import ConfigError
from echoic.layers.block import DropPath
from echoic.layers.selective_scan import selective_scan

__all__ = ["MambaBlock", "MambaMixer"]

ScanInputs = tuple[
    torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor
]
"""``x, delta, A, B, C, D`` of one direction (:func:`~echoic.layers.selective_scan.selective_scan`)."""


class MambaMixer(nn.Module):
    """``(B, L, D)`` → ``(B, L, D)``: one (bi)directional Mamba layer (module docstring).

    d_state: ``N``; expand: ``ED = expand * D``; d_conv: the causal convolution's taps; dt_rank:
    ``ceil(D / 16)`` when None; chunk: steps per streamed block of the scan; fused: use
    ``mamba_ssm``'s CUDA kernel when it imports and the input is on a GPU.
    """

    def __init__(
        self,
        dim: int,
        d_state: int = 16,
        expand: int = 2,
        d_conv: int = 4,
        dt_rank: int | None = None,
        bias: bool = False,
        conv_bias: bool = True,
        bidirectional: bool = True,
        divide_output: bool = True,
        chunk: int = 64,
        fused: bool = True,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
    ) -> None:
        super().__init__()
        if min(dim, d_state, expand, d_conv) < 1:
            raise ConfigError(
                f"Mamba sizes must be >= 1; found dim={dim}, d_state={d_state}, expand={expand}, "
                f"d_conv={d_conv}."
            )
        inner = expand * dim
        self.d_inner, self.d_state = inner, d_state
        self.dt_rank = math.ceil(dim / 16) if dt_rank is None else int(dt_rank)
        self.bidirectional, self.divide_output = bidirectional, divide_output
        self.chunk, self.fused = chunk, fused
        self.in_proj = nn.Linear(dim, 2 * inner, bias=bias)
        self.out_proj = nn.Linear(inner, dim, bias=bias)
        for suffix in ("", "_b") if bidirectional else ("",):
            conv = nn.Conv1d(inner, inner, d_conv, bias=conv_bias, groups=inner, padding=d_conv - 1)
            setattr(self, "conv1d" + suffix, conv)
            x_proj = nn.Linear(inner, self.dt_rank + 2 * d_state, bias=False)
            setattr(self, "x_proj" + suffix, x_proj)
            setattr(self, "dt_proj" + suffix, self._dt_proj(dt_min, dt_max))
            decay = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(inner, 1)
            setattr(self, "A_log" + suffix, nn.Parameter(torch.log(decay)))  # S4D-real init
            setattr(self, "D" + suffix, nn.Parameter(torch.ones(inner)))

    def _dt_proj(self, dt_min: float, dt_max: float) -> nn.Linear:
        """``dt_rank → ED`` with Mamba's init: uniform weights, a bias whose softplus is a
        log-uniform step in ``[dt_min, dt_max]``."""
        proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        std = self.dt_rank**-0.5
        nn.init.uniform_(proj.weight, -std, std)
        log_dt = torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        dt = torch.exp(log_dt).clamp(min=1e-4)
        with torch.no_grad():
            proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # the inverse of softplus
        return proj

    def _inputs(self, x: torch.Tensor, pad: torch.Tensor | None, suffix: str) -> ScanInputs:
        """One direction's scan inputs from ``x (B, L, ED)`` (before the convolution)."""
        conv: nn.Conv1d = getattr(self, "conv1d" + suffix)
        x_proj: nn.Linear = getattr(self, "x_proj" + suffix)
        dt_proj: nn.Linear = getattr(self, "dt_proj" + suffix)
        length = x.shape[1]
        if pad is not None:
            x = x.masked_fill(pad[..., None], 0.0)
        x = F.silu(conv(x.transpose(1, 2))[..., :length].transpose(1, 2))
        dt, B, C = torch.split(x_proj(x), [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(dt_proj(dt))
        if pad is not None:
            delta = delta.masked_fill(pad[..., None], 0.0)
        A = -torch.exp(getattr(self, "A_log" + suffix).float())
        D = getattr(self, "D" + suffix).float()
        return x, delta, A, B, C, D

    def _ssm(self, x: torch.Tensor, pad: torch.Tensor | None, suffix: str) -> torch.Tensor:
        """One direction: ``x (B, L, ED)`` (before the convolution) → ``y (B, L, ED)``."""
        return selective_scan(*self._inputs(x, pad, suffix), self.chunk, self.fused)

    def _paired(self, forward: ScanInputs, backward: ScanInputs) -> torch.Tensor:
        """Both directions' scans as one batch of ``2B`` (inference): half the scan's loop steps
        and small-op overhead; the same arithmetic per element as two calls."""
        batch = forward[0].shape[0]
        x, delta, B, C = (torch.cat([forward[i], backward[i]]) for i in (0, 1, 3, 4))
        A = torch.cat([forward[2].expand(batch, -1, -1), backward[2].expand(batch, -1, -1)])
        D = torch.cat([forward[5].expand(batch, -1), backward[5].expand(batch, -1)])
        y = selective_scan(x, delta, A, B, C, D[:, None], self.chunk, fused=False)
        return y[:batch] + y[batch:].flip(1)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: ``(B, L, D)``; padding_mask: ``(B, L)`` bool, True on padding (or None)."""
        branch, gate = self.in_proj(x).chunk(2, dim=-1)
        if not self.bidirectional:
            y = self._ssm(branch, padding_mask, "")
        else:
            pad_b = None if padding_mask is None else padding_mask.flip(1)
            training = torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())
            if training or (self.fused and branch.is_cuda):
                y = self._ssm(branch, padding_mask, "")
                y = y + self._ssm(branch.flip(1), pad_b, "_b").flip(1)
            else:
                forward = self._inputs(branch, padding_mask, "")
                y = self._paired(forward, self._inputs(branch.flip(1), pad_b, "_b"))
            if self.divide_output:
                y = y / 2
        return self.out_proj(y * F.silu(gate))


class MambaBlock(nn.Module):
    """Pre-norm residual Mamba block: ``x + drop_path(mixer(norm(x)))`` (``mambapy``'s
    ``ResidualBlock``) around a :class:`MambaMixer` of width ``dim``. norm: ``"rms"`` (RMSNorm,
    mambapy / Vim) or ``"layer"`` (LayerNorm, SSAMBA's pretraining recipe)."""

    def __init__(
        self,
        mixer: MambaMixer,
        dim: int,
        norm: str = "rms",
        norm_eps: float = 1e-5,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        if norm not in ("rms", "layer"):
            raise ConfigError(f"Mamba block norm must be 'rms' or 'layer'; found {norm!r}.")
        self.mixer = mixer
        self.norm: nn.Module = (
            nn.RMSNorm(dim, eps=norm_eps) if norm == "rms" else nn.LayerNorm(dim, eps=norm_eps)
        )
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        return x + self.drop_path(self.mixer(self.norm(x), padding_mask))
