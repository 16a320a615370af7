"""Scores of a segmentation against reference boundaries (syllables, words, phones).

* :func:`boundary_scores`: boundary hits within a tolerance (default 50 ms), giving precision,
  recall, F1 and the R-value. Each reference boundary is matched at most once, and so is each
  predicted one; the matching is **optimal** (the largest possible number of hits), found by a
  linear two-pointer sweep over the sorted lists: with the same tolerance on every boundary, an
  exchange argument shows that matching the earliest unmatched pair that lies within the
  tolerance never loses a hit (``tests/evaluate/test_evaluate_segmentation.py`` checks it against
  a brute force over every assignment). Among matchings with the most hits, no attempt is made to
  minimise the distances: the scores only count hits.
* R-value (Räsänen, Laine & Altosaar 2009, "An improved speech segmentation quality measure: the
  R-value", Interspeech): with hit rate ``HR = recall`` and over-segmentation
  ``OS = recall / precision − 1`` (computed as ``n_predicted / n_reference − 1``, the same number
  whenever there is a hit, and defined when there is none), ``r1 = sqrt((1 − HR)² + OS²)``,
  ``r2 = (−OS + HR − 1) / sqrt(2)`` and ``R = 1 − (|r1| + |r2|) / 2``. 1 is perfect; predicting no
  boundary at all gives ``1 − sqrt(2)/2 ≈ 0.293``.
* Scores over a corpus add the counts of every utterance first (:class:`BoundaryScores` supports
  ``+`` and ``sum``), then divide: micro averages, as the segmentation literature reports them.
* :func:`count_scores`: syllable-count accuracy (exact match rate, mean absolute error);
  :func:`tokens_per_second`; :func:`token_purity`: share of segments whose token's most
  frequent reference label is theirs (and the converse, :func:`label_purity`).

Empty lists: a side with no boundaries scores 1 only when the other side is empty too
(nothing to find, nothing found), else 0 (precision with nothing predicted, recall with nothing
to find); the R-value with no reference boundary is 1 when nothing is predicted, else NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from echoic.errors import ConfigError
from echoic.tokenizers.metrics import purity

__all__ = [
    "BoundaryScores",
    "CountScores",
    "boundaries_of",
    "boundary_scores",
    "count_scores",
    "label_purity",
    "match_boundaries",
    "r_value",
    "token_purity",
    "tokens_per_second",
]

DEFAULT_TOLERANCE_S = 0.05


def _sorted_times(values: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.isfinite(array).all():
        raise ConfigError(f"{what} boundaries must be finite times in seconds; found {array}.")
    return np.sort(array)


def match_boundaries(
    predicted: Sequence[float] | np.ndarray,
    reference: Sequence[float] | np.ndarray,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> list[tuple[int, int]]:
    """Pairs ``(i, j)`` of hits between the **sorted** predicted and reference times: ``|p_i −
    r_j| ≤ tolerance_s``, each boundary in at most one pair, as many pairs as possible."""
    if tolerance_s < 0:
        raise ConfigError(f"tolerance_s must be >= 0 seconds; found {tolerance_s}.")
    pred = _sorted_times(predicted, "predicted")
    ref = _sorted_times(reference, "reference")
    pairs: list[tuple[int, int]] = []
    i = j = 0
    eps = 1e-9  # a boundary exactly at the tolerance counts, whatever the float rounding
    while i < len(pred) and j < len(ref):
        if abs(pred[i] - ref[j]) <= tolerance_s + eps:
            pairs.append((i, j))
            i += 1
            j += 1
        elif pred[i] < ref[j]:
            i += 1  # too early for this and every later reference
        else:
            j += 1
    return pairs


def r_value(hit_rate: float, over_segmentation: float) -> float:
    """Räsänen et al.'s R-value from the hit rate (recall) and over-segmentation."""
    r1 = math.sqrt((1.0 - hit_rate) ** 2 + over_segmentation**2)
    r2 = (-over_segmentation + hit_rate - 1.0) / math.sqrt(2.0)
    return 1.0 - (abs(r1) + abs(r2)) / 2.0


@dataclass(frozen=True)
class BoundaryScores:
    """Hit counts of one utterance or (summed) of a corpus, and the scores they give."""

    hits: int
    n_predicted: int
    n_reference: int

    def __add__(self, other: BoundaryScores) -> BoundaryScores:
        return BoundaryScores(
            self.hits + other.hits,
            self.n_predicted + other.n_predicted,
            self.n_reference + other.n_reference,
        )

    def __radd__(self, other: object) -> BoundaryScores:
        if other == 0:  # sum() starts from 0
            return self
        return NotImplemented

    @property
    def precision(self) -> float:
        if self.n_predicted == 0:
            return 1.0 if self.n_reference == 0 else 0.0
        return self.hits / self.n_predicted

    @property
    def recall(self) -> float:
        if self.n_reference == 0:
            return 1.0 if self.n_predicted == 0 else 0.0
        return self.hits / self.n_reference

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)

    @property
    def over_segmentation(self) -> float:
        """``n_predicted / n_reference − 1`` (= recall / precision − 1 when there is a hit)."""
        if self.n_reference == 0:
            return 0.0 if self.n_predicted == 0 else math.inf
        return self.n_predicted / self.n_reference - 1.0

    @property
    def r_value(self) -> float:
        if self.n_reference == 0:
            return 1.0 if self.n_predicted == 0 else math.nan
        return r_value(self.recall, self.over_segmentation)

    def as_dict(self) -> dict[str, float]:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "r_value": self.r_value,
            "over_segmentation": self.over_segmentation,
            "hits": float(self.hits),
            "n_predicted": float(self.n_predicted),
            "n_reference": float(self.n_reference),
        }


def boundary_scores(
    predicted: Sequence[float] | np.ndarray,
    reference: Sequence[float] | np.ndarray,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> BoundaryScores:
    """Hits of ``predicted`` against ``reference`` boundary times (seconds) within
    ``tolerance_s`` (module docstring). Duplicated times are kept: deduplicate first
    (:func:`boundaries_of`) when segments share their edges."""
    hits = len(match_boundaries(predicted, reference, tolerance_s))
    return BoundaryScores(hits, int(np.size(predicted)), int(np.size(reference)))


def boundaries_of(
    starts_s: Sequence[float] | np.ndarray,
    ends_s: Sequence[float] | np.ndarray,
    merge_within_s: float = 1e-6,
) -> np.ndarray:
    """Sorted boundary times of segments: every start and end, with times closer than
    ``merge_within_s`` (an end that is the next start) counted once."""
    times = np.sort(np.concatenate([np.asarray(starts_s, float), np.asarray(ends_s, float)]))
    if times.size == 0:
        return times
    keep = np.ones(times.size, dtype=bool)
    keep[1:] = np.diff(times) > merge_within_s
    return times[keep]


@dataclass(frozen=True)
class CountScores:
    """Syllable counts per utterance against the reference: exact-match rate and mean absolute
    error (in syllables), over ``n`` utterances."""

    accuracy: float
    mean_absolute_error: float
    n: int


def count_scores(
    predicted: Sequence[int] | np.ndarray, reference: Sequence[int] | np.ndarray
) -> CountScores:
    """Exact-match accuracy and MAE of predicted against reference counts (one per utterance)."""
    pred = np.asarray(predicted, dtype=np.int64).reshape(-1)
    ref = np.asarray(reference, dtype=np.int64).reshape(-1)
    if pred.shape != ref.shape or pred.size == 0:
        raise ConfigError(
            f"count_scores needs one predicted and one reference count per utterance (equal, "
            f"non-empty lists); found {pred.size} and {ref.size}."
        )
    return CountScores(
        float(np.mean(pred == ref)), float(np.mean(np.abs(pred - ref))), int(pred.size)
    )


def tokens_per_second(n_tokens: Sequence[int] | int, durations_s: Sequence[float] | float) -> float:
    """Tokens (segments) per second of audio over a corpus: ``sum(n_tokens) / sum(durations)``."""
    total = float(np.sum(durations_s))
    if total <= 0:
        raise ConfigError(f"tokens_per_second needs audio (> 0 s in all); found {total} s.")
    return float(np.sum(n_tokens)) / total


def token_purity(tokens: Sequence[int] | np.ndarray, labels: Sequence[object]) -> float:
    """Share of segments whose token id's most frequent reference label is their own (1 when
    every token stands for one label; it rises with the number of distinct tokens)."""
    return purity(np.asarray(tokens), np.asarray(labels))


def label_purity(tokens: Sequence[int] | np.ndarray, labels: Sequence[object]) -> float:
    """The converse of :func:`token_purity`: share of segments whose label's most frequent
    token is their own (1 when every label is always given one token)."""
    return purity(np.asarray(labels), np.asarray(tokens))
