"""Linear-time segmentation of frame features by similarity (Sylber's greedy pass).

Sylber (Cho et al., ICLR 2025, "Sylber: Syllabic Embedding Representation of Speech from Raw
Audio") trains features that are nearly constant within a syllable, so that one pass over the
frames finds the syllables. :func:`similarity_segments` implements that pass on any ``(T, D)``
frame features, in numpy:

1. **Silence**: a frame whose L2 norm is below the norm threshold (``norm_threshold``, or
   ``relative_norm_threshold`` × the clip's median norm, whichever is higher) belongs to no
   segment and ends the current one. Sylber's trained features have low norm in silence (its
   released segmenter uses 2.6 on the output of its model, a HuBERT-base cut at layer 9); an
   untrained model's need not, so both thresholds are 0 (off) by default.
2. **Greedy pass**: a speech frame joins the current segment while its cosine similarity to the
   running mean of the segment's frames is ≥ ``merge_threshold`` (Sylber: 0.8); otherwise it
   starts a new segment. One dot product per frame: O(T·D).
3. **Refinement** (``refine=True``, as in Sylber's released segmenter): for each boundary
   between two touching segments, left to right, the two are merged when their means have
   cosine ≥ ``merge_threshold``; otherwise the boundary moves, within half of each segment's
   length, to the split that maximises the summed cosine similarity of the frames to the left
   segment's mean before it and to the right one's after it (each segment keeps ≥ 1 frame).
   Each frame is looked at a bounded number of times: still O(T·D).

Deviations from the released code, on purpose: the running mean is the exact mean of the
segment's frames (its counter restarts with each segment), and a refined boundary never empties
a segment. :func:`segment_times` turns frame segments into seconds through the model's
token→time map (frame centres), and :func:`segment_means` gives each segment's embedding;
:func:`segments_scene` averages those into one clip embedding (the Embedder's
``scene_pool="segments"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from echoic.errors import ConfigError

__all__ = [
    "SimilarityConfig",
    "segment_means",
    "segment_times",
    "segments_scene",
    "similarity_segments",
]


@dataclass
class SimilarityConfig:
    """Settings of :func:`similarity_segments` (see the module docstring)."""

    merge_threshold: float = 0.8
    norm_threshold: float = 0.0
    relative_norm_threshold: float = 0.0
    refine: bool = True

    def __post_init__(self) -> None:
        if not -1.0 <= self.merge_threshold <= 1.0:
            raise ConfigError(
                f"merge_threshold is a cosine similarity in [-1, 1]; found {self.merge_threshold}."
            )
        if self.norm_threshold < 0 or self.relative_norm_threshold < 0:
            raise ConfigError(
                "norm_threshold and relative_norm_threshold must be >= 0 (0 turns silence "
                f"detection off); found {self.norm_threshold}, {self.relative_norm_threshold}."
            )


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b)) / denom if denom > 0 else 0.0


def _rows_cosine(frames: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row of ``frames`` ``(n, D)`` to ``centre`` ``(D,)``."""
    norms = np.linalg.norm(frames, axis=1) * float(np.linalg.norm(centre))
    dots = frames @ centre.astype(frames.dtype, copy=False)
    return np.divide(dots, norms, out=np.zeros_like(dots, dtype=np.float64), where=norms > 0)


def speech_mask(frames: np.ndarray, config: SimilarityConfig) -> np.ndarray:
    """``(T,)`` True where a frame's norm reaches the silence threshold (every frame when both
    thresholds are 0)."""
    norms = np.linalg.norm(frames, axis=1)
    threshold = config.norm_threshold
    if config.relative_norm_threshold > 0 and norms.size:
        threshold = max(threshold, config.relative_norm_threshold * float(np.median(norms)))
    if threshold <= 0:
        return np.ones(frames.shape[0], dtype=bool)
    return norms >= threshold


def _greedy(frames: np.ndarray, speech: np.ndarray, threshold: float) -> list[list[int]]:
    """Step 2: ``[start, end)`` frame segments; touching ones are split by similarity."""
    segments: list[list[int]] = []
    total = np.zeros(frames.shape[1], dtype=np.float64)  # sum of the segment's frames
    total_sq = 0.0  # |total|², updated from the dot products alone
    start = -1
    for t in range(frames.shape[0]):
        if not speech[t]:
            if start >= 0:
                segments.append([start, t])
                start = -1
            continue
        frame = frames[t]
        frame_sq = float(np.dot(frame, frame))
        if start >= 0:
            dot = float(np.dot(total, frame))
            denom = np.sqrt(total_sq * frame_sq)
            if denom > 0 and dot / denom >= threshold:  # cosine to the mean = to the sum
                total += frame
                total_sq += 2.0 * dot + frame_sq
                continue
            segments.append([start, t])
        start = t
        total[:] = frame
        total_sq = frame_sq
    if start >= 0:
        segments.append([start, frames.shape[0]])
    return segments


def _refine(frames: np.ndarray, segments: list[list[int]], threshold: float) -> list[list[int]]:
    """Step 3: merge touching segments with similar means, else move their boundary. Segment
    sums are carried along (a merge adds them, a moved boundary shifts a few frames), so every
    frame is summed a bounded number of times."""
    if len(segments) < 2:
        return segments
    out = [list(segments[0])]
    left_sum = frames[segments[0][0] : segments[0][1]].sum(0, dtype=np.float64)
    for start, end in segments[1:]:
        left = out[-1]
        right_sum = frames[start:end].sum(0, dtype=np.float64)
        if left[1] != start:  # silence between them: nothing to refine
            out.append([start, end])
            left_sum = right_sum
            continue
        left_mean = left_sum / (left[1] - left[0])
        right_mean = right_sum / (end - start)
        if _cosine(left_mean, right_mean) >= threshold:
            left[1] = end
            left_sum += right_sum
            continue
        boundary = start
        lo = max(left[0] + 1, start - max(1, (left[1] - left[0]) // 2))
        hi = min(end - 1, start + max(1, (end - start) // 2))
        if hi > lo:
            window = frames[lo - 1 : hi + 1]  # candidate splits k in [lo, hi]
            to_left = _rows_cosine(window, left_mean)
            to_right = _rows_cosine(window, right_mean)
            # score(k) = sum of to_left over frames [lo-1, k) + of to_right over [k, hi]
            before = np.concatenate([[0.0], np.cumsum(to_left)])
            after = np.concatenate([np.cumsum(to_right[::-1])[::-1], [0.0]])
            offsets = np.arange(1, hi - lo + 2)  # k - (lo - 1)
            boundary = lo + int(np.argmax(before[offsets] + after[offsets]))
        if boundary < start:  # frames [boundary, start) move to the right segment
            right_sum += frames[boundary:start].sum(0, dtype=np.float64)
        elif boundary > start:
            right_sum -= frames[start:boundary].sum(0, dtype=np.float64)
        left[1] = boundary
        out.append([boundary, end])
        left_sum = right_sum
    return out


def similarity_segments(frames: np.ndarray, config: SimilarityConfig | None = None) -> np.ndarray:
    """Segments of ``frames`` ``(T, D)``: ``(S, 2)`` int64 ``[start, end)`` frame indices in
    time order, not overlapping, silent frames in none (module docstring)."""
    config = config or SimilarityConfig()
    frames = np.asarray(frames)
    if frames.ndim != 2:
        raise ConfigError(f"expected frames (T, D); found shape {frames.shape}.")
    if not np.isfinite(frames).all():
        raise ConfigError(
            "frames hold NaN or inf values; the model's output cannot be segmented (check the "
            "audio and the model's numerics)."
        )
    if frames.dtype not in (np.float32, np.float64):
        frames = frames.astype(np.float32)
    if frames.shape[0] == 0:
        return np.zeros((0, 2), dtype=np.int64)
    segments = _greedy(frames, speech_mask(frames, config), config.merge_threshold)
    if config.refine:
        segments = _refine(frames, segments, config.merge_threshold)
    return np.asarray(segments, dtype=np.int64).reshape(-1, 2)


def segment_means(frames: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """``(S, D)`` float32 mean of each segment's frames (summed in float64; O(T·D), no copy of
    the frames)."""
    frames = np.asarray(frames)
    out = np.zeros((len(segments), frames.shape[1]), dtype=np.float32)
    for row, (start, end) in enumerate(segments):
        out[row] = frames[start:end].mean(0, dtype=np.float64)
    return out


def segments_scene(frames: np.ndarray, config: SimilarityConfig | None = None) -> np.ndarray:
    """``(D,)`` float32 clip embedding of ``frames`` ``(T, D)``: the unweighted mean, over the
    :func:`similarity_segments` of the frames, of each segment's :func:`segment_means` row, so
    each syllable-like unit counts once whatever its length (the mean of the segment embeddings
    ``echoic segment`` writes with the same settings). Where the pass finds no segment (every
    frame below the silence threshold, or no frame) or the frames are not finite (segmenting
    them is refused), it falls back to the plain frame mean (NaN where the frames hold NaN, as
    the mean would)."""
    frames = np.asarray(frames)
    if frames.ndim != 2:
        raise ConfigError(f"expected frames (T, D); found shape {frames.shape}.")
    segments = (
        similarity_segments(frames, config)
        if frames.shape[0] and np.isfinite(frames).all()
        else np.zeros((0, 2), dtype=np.int64)
    )
    if len(segments) == 0:
        if frames.shape[0] == 0:
            return np.full(frames.shape[1], np.nan, dtype=np.float32)
        return frames.mean(0, dtype=np.float64).astype(np.float32)
    return segment_means(frames, segments).mean(0, dtype=np.float64).astype(np.float32)


def segment_times(
    segments: np.ndarray, frame_times_s: np.ndarray, duration_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(S,)`` start and end times (s) of frame segments: frame ``t`` covers half a hop either
    side of its centre ``frame_times_s[t]`` (so touching segments share the very same time);
    times are clipped to ``[0, duration_s]``."""
    times = np.asarray(frame_times_s, dtype=np.float64)
    if len(segments) == 0:
        return np.zeros(0), np.zeros(0)
    hop = float(np.median(np.diff(times))) if times.size > 1 else float(duration_s)
    edges = np.append(times - hop / 2, times[-1] + hop / 2)  # edge k: before frame k
    edges = np.clip(edges, 0.0, duration_s)
    return edges[segments[:, 0]], edges[segments[:, 1]]
