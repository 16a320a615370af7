"""Bucketed relative position bias (T5, WavLM, BEATs) and WavLM's query-gated variant.

A relative distance ``j - i`` (key position minus query position) falls into one of
``num_buckets`` buckets: distances below ``max_exact`` get their own bucket, larger ones share
logarithmically wider buckets up to ``max_distance`` (and everything beyond lands in the last one).
Bidirectional biases spend half the buckets on keys after the query (``j > i``) and half on keys at
or before it; unidirectional ones bucket only ``max(i - j, 0)``. Each bucket has one learned value
per head; the resulting ``(1, H, N_q, N_k)`` bias is added to the attention logits.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from echoic.errors import ConfigError

__all__ = ["GatedRelativePositionBias", "RelativePositionBias", "relative_position_bucket"]


def relative_position_bucket(
    relative_position: torch.Tensor,
    num_buckets: int = 320,
    max_distance: int = 800,
    bidirectional: bool = True,
) -> torch.Tensor:
    """Bucket index of each relative distance.

    relative_position: ``(...)`` int64, key position minus query position. Returns ``(...)`` int64
    in ``[0, num_buckets)``. The log-spaced part is computed in float32 and truncated after adding
    ``max_exact`` (WavLM's order; T5 and BEATs truncate first, which gives the same buckets for the
    published configurations).
    """
    buckets = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + (relative_position > 0).to(torch.long) * num_buckets
        distance = relative_position.abs()
    else:
        distance = (-relative_position).clamp(min=0)
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    log_ratio = torch.log(distance.float() / max_exact) / math.log(max_distance / max_exact)
    large = (max_exact + log_ratio * (num_buckets - max_exact)).to(torch.long)
    large = large.clamp(max=num_buckets - 1)
    return buckets + torch.where(is_small, distance, large)


class RelativePositionBias(nn.Module):
    """Learned bucketed relative position bias: ``(n_query, n_key)`` → ``(1, H, n_query, n_key)``.

    The table is ``embedding.weight``: ``(num_buckets, heads)`` (the layout of T5's
    ``relative_attention_bias`` and WavLM's / BEATs' ``rel_attn_embed``).
    """

    def __init__(
        self,
        heads: int,
        num_buckets: int = 320,
        max_distance: int = 800,
        bidirectional: bool = True,
    ) -> None:
        super().__init__()
        smallest = 4 if bidirectional else 2
        if num_buckets < smallest or max_distance <= num_buckets // smallest:
            raise ConfigError(
                f"relative position bias needs num_buckets >= {smallest} and max_distance above "
                f"the exact range ({num_buckets // smallest}); found num_buckets={num_buckets}, "
                f"max_distance={max_distance}. WavLM and BEATs use 320 and 800."
            )
        self.heads = heads
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.bidirectional = bidirectional
        self.embedding = nn.Embedding(num_buckets, heads)

    def buckets(
        self, n_query: int, n_key: int | None = None, device: torch.device | None = None
    ) -> torch.Tensor:
        """``(n_query, n_key)`` int64 bucket of each query/key pair (``n_key`` defaults to
        ``n_query``)."""
        n_key = n_query if n_key is None else n_key
        device = self.embedding.weight.device if device is None else device
        query = torch.arange(n_query, device=device)[:, None]
        key = torch.arange(n_key, device=device)[None, :]
        return relative_position_bucket(
            key - query, self.num_buckets, self.max_distance, self.bidirectional
        )

    def forward(self, n_query: int, n_key: int | None = None) -> torch.Tensor:
        """Returns ``(1, H, n_query, n_key)``, to add to attention logits (broadcasts over the
        batch)."""
        values = self.embedding(self.buckets(n_query, n_key))  # (Nq, Nk, H)
        return values.permute(2, 0, 1).unsqueeze(0)

    def at_positions(self, positions: torch.Tensor) -> torch.Tensor:
        """positions: ``(B, K)`` int64 grid positions of the tokens (e.g. kept tokens). Returns the
        ``(B, H, K, K)`` bias of every query/key pair at those positions."""
        positions = positions.long().to(self.embedding.weight.device)
        buckets = relative_position_bucket(
            positions[:, None, :] - positions[:, :, None],
            self.num_buckets,
            self.max_distance,
            self.bidirectional,
        )
        return self.embedding(buckets).permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return (
            f"heads={self.heads}, num_buckets={self.num_buckets}, "
            f"max_distance={self.max_distance}, bidirectional={self.bidirectional}"
        )


class GatedRelativePositionBias(nn.Module):
    """WavLM / BEATs gate on a relative position bias, one scalar per head and query token.

    For each head, the gate input of a query token (``Dh`` channels) goes through
    ``Linear(Dh, 8)``; the 8 values are summed in two groups of 4, squashed by a sigmoid into
    ``a`` and ``b``, and the bias row of that query is scaled by ``a * (b * c - 1) + 2`` where ``c``
    is a learned per-head constant (``const``, initialised to 1). WavLM gates with the attention
    input split into heads; BEATs with the projected query (see ``Attention(position_gate=...)``).
    """

    def __init__(self, heads: int, head_dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.linear = nn.Linear(head_dim, 8)
        self.const = nn.Parameter(torch.ones(1, heads, 1, 1))

    def gate(self, gate_input: torch.Tensor) -> torch.Tensor:
        """gate_input: ``(B, H, N, Dh)``. Returns the ``(B, H, N, 1)`` multiplier."""
        logits = self.linear(gate_input)  # (B, H, N, 8)
        logits = logits.view(*logits.shape[:-1], 2, 4).sum(dim=-1)  # (B, H, N, 2)
        gate_a, gate_b = torch.sigmoid(logits).chunk(2, dim=-1)
        return gate_a * (gate_b * self.const - 1.0) + 2.0

    def forward(self, gate_input: torch.Tensor, position_bias: torch.Tensor) -> torch.Tensor:
        """gate_input: ``(B, H, N, Dh)``; position_bias: ``(1 or B, H, N, N_k)``.

        Returns the gated bias ``(B, H, N, N_k)``.
        """
        return self.gate(gate_input) * position_bias
