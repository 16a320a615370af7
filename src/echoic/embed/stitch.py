"""Chunk outputs → one pass's frames, assembled as the chunks come out of the encoder.

Each time patch is taken from the chunk where it sits farthest from an edge: the midpoint of each
overlap is the boundary between neighbouring chunks. Parts are copied into one float32 buffer as
soon as they are in order, so a clip's chunk outputs (which overlap, so hold more frames than the
clip) are never all held at once: memory is the clip's frames plus at most a batch of chunks.
"""

from __future__ import annotations

import itertools

import torch


class FrameStitcher:
    """Frames ``(T, D)`` of one pass over a clip chunked as ``plan`` (first, end token) spans.

    Equal to ``torch.cat([chunks[k][lo_k:hi_k] for k in ...]).float()``: :meth:`add` takes the
    chunks in any order (one that arrives early is held until those before it are in).
    """

    def __init__(self, plan: list[tuple[int, int]]) -> None:
        if not plan:
            raise ValueError("a plan needs at least one chunk span; found none")
        bounds = [plan[0][0]]
        for (_, end), (next_first, _) in itertools.pairwise(plan):
            bounds.append((next_first + end) // 2)
        bounds.append(plan[-1][1])
        self._spans = [
            (bounds[k] - first, bounds[k + 1] - first) for k, (first, _) in enumerate(plan)
        ]
        self._capacity = bounds[-1] - bounds[0]
        self._early: dict[int, torch.Tensor] = {}
        self._next = 0
        self._filled = 0
        self._buffer: torch.Tensor | None = None

    @property
    def complete(self) -> bool:
        return self._next == len(self._spans)

    def add(self, k: int, frames: torch.Tensor) -> None:
        """Chunk ``k``'s valid frames ``(t, D)`` (a view into a batch is fine: it is not kept)."""
        if not 0 <= k < len(self._spans) or k < self._next or k in self._early:
            raise ValueError(
                f"chunk {k} is not expected: the plan has {len(self._spans)} chunks and "
                f"{self._next} are already placed; each chunk is added once"
            )
        lo, hi = self._spans[k]
        part = frames[lo:hi]
        if k != self._next:
            self._early[k] = part.clone()  # its own storage, so the batch can be freed
            return
        self._place(part)
        while self._next in self._early:
            self._place(self._early.pop(self._next))

    def _place(self, part: torch.Tensor) -> None:
        if self._buffer is None:
            shape = (self._capacity, *part.shape[1:])
            self._buffer = torch.empty(shape, dtype=torch.float32, device=part.device)
        n = int(part.shape[0])
        self._buffer[self._filled : self._filled + n] = part
        self._filled += n
        self._next += 1

    def frames(self) -> torch.Tensor:
        """The stitched frames ``(T, D)`` float32, once every chunk has been added."""
        if not self.complete or self._buffer is None:
            raise ValueError(
                f"{self._next} of {len(self._spans)} chunks placed; add every chunk of the plan "
                "before taking the frames"
            )
        return self._buffer[: self._filled]
