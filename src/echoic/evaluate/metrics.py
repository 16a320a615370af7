"""Clip-level metrics with hear-eval-kit's definitions (scikit-learn for mAP and ROC-AUC).

Every function takes ``probs`` ``(N, C)`` (softmax or sigmoid outputs) and multi-hot ``targets``
``(N, C)``. ``*_batched`` versions take ``(G, N, C)`` predictions of ``G`` probes at once.
Event metrics live in :mod:`echoic.evaluate.events`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy.special import ndtri

SceneMetric = Callable[[np.ndarray, np.ndarray], float]

MINIMISED = frozenset({"segment_1s_er", "azimuth_mae_deg"})
"""Metrics where lower is better (everything else is maximised)."""

EVENT_METRICS = frozenset({"event_onset_200ms_fms", "event_onset_50ms_fms", "segment_1s_er"})


def top1_acc(probs: np.ndarray, targets: np.ndarray) -> float:
    """Fraction of clips whose arg-max prediction is the arg-max target (HEAR ``top1_acc``)."""
    return float(np.mean(np.argmax(probs, 1) == np.argmax(targets, 1)))


def chroma_acc(probs: np.ndarray, targets: np.ndarray) -> float:
    """Top-1 accuracy after mapping class indices to ``index mod 12`` (octave errors forgiven).

    As hear-eval-kit, this assumes the vocabulary index order is the pitch order (true for
    echoic's soundfont_pitch and HEAR's nsynth_pitch, whose labels are consecutive MIDI numbers).
    """
    return float(np.mean(np.argmax(probs, 1) % 12 == np.argmax(targets, 1) % 12))


def azimuth_mae_deg(probs: np.ndarray, targets: np.ndarray) -> float:
    """Mean absolute angle (degrees) between predicted and true azimuth *sectors*.

    Assumes, as :func:`chroma_acc` does for pitch, that the vocabulary lists ``C`` equal azimuth
    sectors in angular order around the full circle (echoic's localisation tasks: ``az000``,
    ``az045``, ...): the error of a clip is the circular distance between the two sector centres,
    ``min(|i - j|, C - |i - j|) * 360 / C``. 0 when every sector is right; a continuous error
    against each clip's true azimuth needs the clip's ``spatial.csv`` row.
    """
    return float(azimuth_mae_deg_batched(probs[None], targets)[0])


def azimuth_mae_deg_batched(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    n_classes = probs.shape[-1]
    steps = np.abs(np.argmax(probs, -1) - np.argmax(targets, -1)[None])
    return np.mean(np.minimum(steps, n_classes - steps), axis=1) * (360.0 / n_classes)


def top1_acc_batched(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``(G,)`` top-1 accuracy of ``G`` probes' ``(G, N, C)`` predictions."""
    return np.mean(np.argmax(probs, -1) == np.argmax(targets, -1)[None], axis=1)


def chroma_acc_batched(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    return np.mean(np.argmax(probs, -1) % 12 == (np.argmax(targets, -1) % 12)[None], axis=1)


def mean_average_precision(probs: np.ndarray, targets: np.ndarray) -> float:
    """Macro average precision over classes (scikit-learn), as hear-eval-kit's ``mAP``.

    A class without positives in ``targets`` contributes what scikit-learn gives it (0 with a
    warning, silenced here), exactly as in hear-eval-kit.
    """
    from sklearn.metrics import average_precision_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(average_precision_score(targets, probs, average="macro"))


def aucroc(probs: np.ndarray, targets: np.ndarray) -> float:
    """Macro ROC-AUC (scikit-learn); NaN when a class lacks positives or negatives (as HEAR)."""
    from sklearn.metrics import roc_auc_score

    try:
        return float(roc_auc_score(targets, probs, average="macro"))
    except ValueError:
        return float("nan")


def d_prime(probs: np.ndarray, targets: np.ndarray) -> float:
    """Mean over classes of ``sqrt(2) * Φ⁻¹(AUC_c)``; NaN when an AUC is undefined (as HEAR)."""
    from sklearn.metrics import roc_auc_score

    try:
        auc = roc_auc_score(targets, probs, average=None)
    except ValueError:
        return float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):  # AUC 0 or 1 gives ∓inf, as in HEAR
        return float(np.mean(ndtri(np.asarray(auc)) * np.sqrt(2.0)))


SCENE_METRICS: dict[str, SceneMetric] = {
    "top1_acc": top1_acc,
    "pitch_acc": top1_acc,
    "chroma_acc": chroma_acc,
    "azimuth_mae_deg": azimuth_mae_deg,
    "mAP": mean_average_precision,
    "aucroc": aucroc,
    "d_prime": d_prime,
}

BATCHED: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "top1_acc": top1_acc_batched,
    "pitch_acc": top1_acc_batched,
    "chroma_acc": chroma_acc_batched,
    "azimuth_mae_deg": azimuth_mae_deg_batched,
}


def scene_metric_batched(name: str, probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``(G,)`` values of metric ``name`` for ``(G, N, C)`` predictions."""
    if name in BATCHED:
        return BATCHED[name](probs, targets)
    fn = SCENE_METRICS[name]
    return np.array([fn(p, targets) for p in probs])


def report_metrics(task_metrics: list[str], prediction_type: str, is_event: bool) -> list[str]:
    """The task's metrics (primary first) plus the standard extras echoic always reports.

    Scene multiclass: + top1_acc, mAP, aucroc, d_prime; scene multilabel: + mAP, aucroc, d_prime;
    event: + event_onset_200ms_fms, event_onset_50ms_fms, segment_1s_er.
    """
    if is_event:
        extra = ["event_onset_200ms_fms", "event_onset_50ms_fms", "segment_1s_er"]
    elif prediction_type == "multiclass":
        extra = ["top1_acc", "mAP", "aucroc", "d_prime"]
    else:
        extra = ["mAP", "aucroc", "d_prime"]
    return list(dict.fromkeys([*task_metrics, *extra]))


def is_better(new: float, best: float, metric: str) -> bool:
    """Strict improvement (Lightning's ``ModelCheckpoint``/``EarlyStopping`` with min_delta 0)."""
    return new < best if metric in MINIMISED else new > best


def best_possible(metric: str) -> float:
    """The value no score can beat (1 for accuracies, F-measures, mAP, AUC; 0 for error rates
    and angle errors)."""
    if metric in MINIMISED:
        return 0.0
    return float("inf") if metric == "d_prime" else 1.0


def worst_value(metric: str) -> float:
    return float("inf") if metric in MINIMISED else float("-inf")


def check_metric_names(names: list[str]) -> None:
    known = set(SCENE_METRICS) | EVENT_METRICS
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(
            f"unknown metric(s) {unknown} in task_metadata.json 'evaluation'; "
            f"echoic knows {sorted(known)}"
        )
