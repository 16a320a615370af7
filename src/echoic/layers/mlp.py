"""Transformer feed-forward block."""

from __future__ import annotations

import torch
from torch import nn

from echoic.layers import fused

__all__ = ["MLP"]


class MLP(nn.Module):
    """``Linear(D, H) → GELU (exact, erf) → Linear(H, D)``: ``(B, N, D)`` → ``(B, N, D)``."""

    def __init__(self, dim: int, hidden_dim: int, bias: bool = True) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim, bias=bias)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim, bias=bias)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """x: ``(B, N, D)`` → ``(B, N, D)``, plus ``residual`` when given (fused on inference)."""
        if isinstance(self.act, nn.GELU) and self.act.approximate == "none":
            h = fused.apply_linear(self.fc1, x, gelu=True)
        else:
            h = self.act(self.fc1(x))
        if residual is None:
            return fused.apply_linear(self.fc2, h)
        return fused.apply_linear_add(self.fc2, h, residual)
