"""Learned tokens prepended to a sequence: ViT's [CLS], DeiT's [CLS] + [DIST]."""

from __future__ import annotations

import torch
from torch import nn

from echoic.errors import ConfigError

__all__ = ["PrefixTokens"]


class PrefixTokens(nn.Module):
    """Prepend ``n_tokens`` (0, 1 or 2) learned tokens: ``(B, N, D)`` → ``(B, n_tokens + N, D)``.

    ``tokens``: ``(1, n_tokens, D)`` in order [CLS, DIST] (DeiT's ``cls_token`` then
    ``dist_token``), truncated-normal init with std ``init_std``; None when ``n_tokens == 0``, which
    makes the module an identity.
    """

    def __init__(self, dim: int, n_tokens: int = 1, init_std: float = 0.02) -> None:
        super().__init__()
        if n_tokens not in (0, 1, 2):
            raise ConfigError(
                f"n_tokens must be 0 (none), 1 ([CLS]) or 2 ([CLS] + distillation); found "
                f"{n_tokens}."
            )
        self.n_tokens = n_tokens
        self.tokens: nn.Parameter | None
        if n_tokens:
            self.tokens = nn.Parameter(torch.zeros(1, n_tokens, dim))
            nn.init.trunc_normal_(self.tokens, std=init_std, a=-2 * init_std, b=2 * init_std)
        else:
            self.register_parameter("tokens", None)

    def forward(
        self, x: torch.Tensor, padding_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: ``(B, N, D)``; padding_mask: ``(B, N)`` bool (True on padding) or None.

        Returns ``(B, n_tokens + N, D)`` and the mask ``(B, n_tokens + N)`` with the prefix
        columns False (never padding), or None when none was given.
        """
        if self.tokens is None:
            return x, padding_mask
        batch = x.shape[0]
        prefix = self.tokens.to(x.dtype).expand(batch, -1, -1)
        x = torch.cat([prefix, x], dim=1)
        if padding_mask is not None:
            visible = padding_mask.new_zeros(batch, self.n_tokens)
            padding_mask = torch.cat([visible, padding_mask], dim=1)
        return x, padding_mask

    def extra_repr(self) -> str:
        return f"n_tokens={self.n_tokens}"
