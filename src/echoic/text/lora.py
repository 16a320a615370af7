"""Low-rank adapters (LoRA, Hu et al. 2021) on the linear layers of a frozen transformer.

``LoRALinear(base)`` computes ``base(x) + (alpha / r) · B A x`` with ``A`` ``(r, in)`` drawn like a
``nn.Linear`` weight (Kaiming-uniform) and ``B`` ``(out, r)`` zeros, so a freshly wrapped layer
computes exactly what ``base`` did; ``base`` is frozen and only ``A`` and ``B`` train. Their
parameter names end in ``lora_a`` / ``lora_b`` (:func:`is_lora_parameter`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from echoic.errors import ConfigError

__all__ = ["LoRALinear", "add_lora", "is_lora_parameter"]


class LoRALinear(nn.Module):
    """``(..., in) → (..., out)``: a frozen ``nn.Linear`` plus a trainable rank-``rank`` update."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        self.base = base
        base.requires_grad_(False)
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.scale = alpha / rank
        self.dropout: nn.Module = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update = F.linear(F.linear(self.dropout(x), self.lora_a), self.lora_b)
        return self.base(x) + self.scale * update

    def extra_repr(self) -> str:
        return f"rank={self.lora_a.shape[0]}, scale={self.scale:g}"


def add_lora(
    root: nn.Module, paths: Iterable[str], rank: int, alpha: float, dropout: float = 0.0
) -> list[str]:
    """Replace each ``nn.Linear`` at ``paths`` (dotted, below ``root``) by a :class:`LoRALinear`
    wrapping it; returns the paths wrapped."""
    done = []
    for path in paths:
        parent_path, _, leaf = path.rpartition(".")
        parent = root.get_submodule(parent_path) if parent_path else root
        layer = getattr(parent, leaf, None)
        if not isinstance(layer, nn.Linear):
            raise ConfigError(
                f"LoRA target {path!r} must be an nn.Linear; found {type(layer).__name__}. "
                "Check the tower's projection_paths."
            )
        setattr(parent, leaf, LoRALinear(layer, rank, alpha, dropout))
        done.append(path)
    return done


def is_lora_parameter(name: str) -> bool:
    """Whether parameter ``name`` (dotted) is a LoRA matrix."""
    return name.rsplit(".", 1)[-1] in ("lora_a", "lora_b")
