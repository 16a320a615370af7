"""Event-task rows that are interpolations of a model's native frames, kept factored.

A patch model's timestamp embeddings are its native frames linearly interpolated onto a finer
grid: echoic-tiny's frames are 160 ms apart and its timestamps 40 ms, so three rows in four are
blends of two neighbours. A probe's first layer is linear, so

    W · ((1 − α) f_k + α f_{k+1}) = (1 − α) (W f_k) + α (W f_{k+1}),

and :class:`InterpolatedRows` computes it that way: the first layer's matrix product runs on the
native frames a mini-batch touches (about a quarter of its rows) and the products are blended —
the same function to float rounding, in the forward and (through autograd) the backward pass, for
a quarter of the first layer's arithmetic. Nothing after the first layer changes (BatchNorm,
dropout and the loss still see every timestamp row).

:func:`interpolated_rows` derives ``(left, right, α)`` from the frame and timestamp times and
*checks* that the cached timestamp rows are those blends (to ``RECONSTRUCTION_TOLERANCE`` of the
rows' scale); where they are not (other interpolation, shifted passes, a model that computes
timestamps itself) it returns None and the probe trains on the rows as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from echoic.evaluate.skinny import rows_matmul

__all__ = ["RECONSTRUCTION_TOLERANCE", "InterpolatedRows", "interpolated_rows"]

RECONSTRUCTION_TOLERANCE = 1e-4
"""Max |blend − cached row| relative to the largest |value| for the factorisation to be used."""


@dataclass
class InterpolatedRows:
    """``N`` rows ``x[i] = (1 − alpha[i]) · native[left[i]] + alpha[i] · native[right[i]]``.

    native: ``(K, D)`` float32; left / right: ``(N,)`` int64 indices into ``native``;
    alpha: ``(N,)`` float32 in [0, 1]. Indexing with a slice or an index tensor gives the rows'
    subset (``native`` is shared, not copied).
    """

    native: torch.Tensor
    left: torch.Tensor
    right: torch.Tensor
    alpha: torch.Tensor

    @property
    def device(self) -> torch.device:
        return self.native.device

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.left.shape[0]), int(self.native.shape[1])

    def __len__(self) -> int:
        return int(self.left.shape[0])

    def __getitem__(self, rows: slice | torch.Tensor) -> InterpolatedRows:
        return InterpolatedRows(self.native, self.left[rows], self.right[rows], self.alpha[rows])

    def to(self, device: torch.device | str) -> InterpolatedRows:
        return InterpolatedRows(
            self.native.to(device),
            self.left.to(device),
            self.right.to(device),
            self.alpha.to(device),
        )

    def dense(self) -> torch.Tensor:
        """``(N, D)`` the rows themselves."""
        a = self.alpha[:, None]
        return (1 - a) * self.native[self.left] + a * self.native[self.right]

    def compact(self) -> InterpolatedRows:
        """The same rows over only the native frames they use (for full-batch products)."""
        used, inverse = torch.unique(torch.cat([self.left, self.right]), return_inverse=True)
        n = self.left.shape[0]
        return InterpolatedRows(self.native[used], inverse[:n], inverse[n:], self.alpha)

    def affine(self, shift: torch.Tensor, scale: torch.Tensor) -> InterpolatedRows:
        """Rows ``(x − shift) / scale``: the natives transformed (blends commute with it, their
        weights summing to 1)."""
        return InterpolatedRows((self.native - shift) / scale, self.left, self.right, self.alpha)

    def linear_full(self, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """``rows @ weight + bias`` computed on every native frame (after :meth:`compact`: all of
        them are used; no per-call index bookkeeping)."""
        products = rows_matmul(self.native, weight)
        a = self.alpha[:, None].to(products.dtype)
        return torch.addcmul(
            torch.addcmul(bias, 1 - a, products[self.left]), a, products[self.right]
        )

    def linear(self, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """``rows @ weight + bias`` ``(N, M)`` for ``weight (D, M)``, computed on the native frames
        the rows use (differentiable in ``weight``, ``bias`` and ``native``)."""
        used, inverse = torch.unique(torch.cat([self.left, self.right]), return_inverse=True)
        products = rows_matmul(self.native[used], weight)  # (U, M)
        n = self.left.shape[0]
        a = self.alpha[:, None].to(products.dtype)
        return torch.addcmul(
            torch.addcmul(bias, 1 - a, products[inverse[:n]]), a, products[inverse[n:]]
        )


def interpolated_rows(
    x: np.ndarray,
    offsets: np.ndarray,
    times_ms: np.ndarray,
    frames: np.ndarray,
    frame_offsets: np.ndarray,
    frame_times_ms: np.ndarray,
) -> InterpolatedRows | None:
    """The factored form of event rows ``x`` ``(N, D)`` (file ``i``: rows
    ``offsets[i]:offsets[i+1]`` at ``times_ms``) from native ``frames`` ``(K, D)`` (file ``i``:
    ``frame_offsets[i]:frame_offsets[i+1]`` at ``frame_times_ms``), or None when the rows are not
    linear interpolations of the frames (then nothing is gained or it would be wrong)."""
    n_files = len(offsets) - 1
    if len(frame_offsets) - 1 != n_files or len(x) == 0 or len(x) <= len(frames):
        return None
    left = np.empty(len(x), np.int64)
    right = np.empty(len(x), np.int64)
    alpha = np.zeros(len(x), np.float64)
    for i in range(n_files):
        lo, hi = int(offsets[i]), int(offsets[i + 1])
        f_lo, f_hi = int(frame_offsets[i]), int(frame_offsets[i + 1])
        if hi == lo:
            continue
        if f_hi == f_lo:
            return None
        ft = frame_times_ms[f_lo:f_hi]
        t = times_ms[lo:hi]
        if len(ft) == 1:
            left[lo:hi] = right[lo:hi] = f_lo
            continue
        k = np.clip(np.searchsorted(ft, t, side="right") - 1, 0, len(ft) - 2)
        a = (t - ft[k]) / (ft[k + 1] - ft[k])
        left[lo:hi], right[lo:hi] = f_lo + k, f_lo + k + 1
        alpha[lo:hi] = np.clip(a, 0.0, 1.0)
    a32 = alpha.astype(np.float32)[:, None]
    scale = max(float(np.abs(x).max()), 1e-12)
    for lo in range(0, len(x), 65536):  # check in blocks: no full-size temporary
        block = slice(lo, lo + 65536)
        blend = (1 - a32[block]) * frames[left[block]] + a32[block] * frames[right[block]]
        if float(np.abs(blend - x[block]).max()) > RECONSTRUCTION_TOLERANCE * scale:
            return None
    return InterpolatedRows(
        torch.from_numpy(np.ascontiguousarray(frames, np.float32)),
        torch.from_numpy(left),
        torch.from_numpy(right),
        torch.from_numpy(a32[:, 0].copy()),
    )


def concat_rows(parts: list[InterpolatedRows]) -> InterpolatedRows:
    """The rows of ``parts`` one after another (their native frames too)."""
    shift = 0
    lefts, rights = [], []
    for part in parts:
        lefts.append(part.left + shift)
        rights.append(part.right + shift)
        shift += int(part.native.shape[0])
    return InterpolatedRows(
        torch.cat([p.native for p in parts]),
        torch.cat(lefts),
        torch.cat(rights),
        torch.cat([p.alpha for p in parts]),
    )
