"""Probe inputs for one fold (embeddings + targets of its splits) and how predictions are scored.

:class:`SplitSet` joins one or more splits of a task's cached embeddings: scene tasks give one row
per clip, event tasks one row per timestamp frame (labelled by hear-eval-kit's rule: a frame at
``t`` carries every event with ``start <= t < end + 0.0001``).

:class:`Scorer` turns probabilities into scores. For event tasks it first decodes events with each
post-processing setting of the grid (hear-eval-kit's default: median filter 250 ms, minimum
duration 125 or 250 ms) and keeps, per probe, the setting with the best primary validation score;
the test split is then decoded with the setting chosen at the probe's best validation check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from echoic.evaluate.cache import SplitEmbeddings, TaskEmbeddings
from echoic.evaluate.events import (
    Events,
    FrameLayout,
    decode_events,
    event_scores,
    frame_targets,
    reference_events,
)
from echoic.evaluate.factored import InterpolatedRows, concat_rows, interpolated_rows
from echoic.evaluate.metrics import (
    EVENT_METRICS,
    MINIMISED,
    SCENE_METRICS,
    scene_metric_batched,
)
from echoic.evaluate.task import HearTask

DEFAULT_POSTPROCESSING = {"median_filter_ms": [250.0], "min_duration": [125.0, 250.0]}
"""hear-eval-kit's ``EVENT_POSTPROCESSING_GRID``."""


@dataclass
class SplitSet:
    """Rows of one or more splits: ``x`` ``(N, D)``, multi-hot ``targets`` ``(N, C)``.

    Event tasks also carry ``files``, frame ``offsets`` ``(F + 1,)``, ``timestamps_ms`` ``(N,)``
    and the ``reference`` events (file indices into ``files``); ``factored`` is ``x`` as
    interpolations of the model's native frames when the cache has them and the rows are exactly
    that (:mod:`echoic.evaluate.factored`), else None.
    """

    x: np.ndarray
    targets: np.ndarray
    files: list[str]
    offsets: np.ndarray | None = None
    timestamps_ms: np.ndarray | None = None
    reference: Events | None = None
    file_split: np.ndarray | None = None  # (F,) index into the gathered splits of each file
    factored: InterpolatedRows | None = None  # event rows as blends of native frames, if they are

    @property
    def labels(self) -> np.ndarray:
        """``(N,)`` class index of each row (multiclass tasks)."""
        return np.argmax(self.targets, 1)


def gather(task: HearTask, emb: TaskEmbeddings, splits: tuple[str, ...]) -> SplitSet:
    """Concatenate ``splits`` of ``emb`` (in the given order) with their targets."""
    files: list[str] = []
    xs, targets, offsets, times, refs, file_split = [], [], [0], [], [], []
    for k, split in enumerate(splits):
        e = emb.splits[split]
        content = task.splits[split]
        xs.append(e.x)
        if task.is_event:
            assert e.offsets is not None and e.timestamps_ms is not None
            targets.append(
                frame_targets(content, e.files, e.offsets, e.timestamps_ms, task.label_index)
            )
            ref = reference_events(content, e.files, task.label_index)
            ref.file = ref.file + len(files)
            refs.append(ref)
            offsets.extend((e.offsets[1:] + offsets[-1]).tolist())
            times.append(e.timestamps_ms)
        else:
            y = np.zeros((len(e.files), task.n_labels), np.float32)
            for i, f in enumerate(e.files):
                y[i, task.label_ids(content[f])] = 1.0
            targets.append(y)
        files.extend(e.files)
        file_split.extend([k] * len(e.files))
    x = np.concatenate(xs) if xs else np.zeros((0, 0), np.float32)
    out = SplitSet(x, np.concatenate(targets), files, file_split=np.array(file_split, np.int64))
    if task.is_event:
        out.offsets = np.array(offsets, np.int64)
        out.timestamps_ms = np.concatenate(times)
        out.reference = Events(*(np.concatenate([getattr(r, k) for r in refs]) for k in _FIELDS))
        out.factored = _factored([emb.splits[split] for split in splits])
    return out


def _factored(parts: list[SplitEmbeddings]) -> InterpolatedRows | None:
    """The splits' rows as interpolations of their native frames, if every split has them."""
    rows = []
    for e in parts:
        if e.frames is None or e.frame_offsets is None or e.frame_times_ms is None:
            return None
        assert e.offsets is not None and e.timestamps_ms is not None
        r = interpolated_rows(
            e.x, e.offsets, e.timestamps_ms, e.frames, e.frame_offsets, e.frame_times_ms
        )
        if r is None:
            return None
        rows.append(r)
    return concat_rows(rows) if rows else None


_FIELDS = ("file", "label", "start_ms", "end_ms")


class Scorer:
    """Scores probabilities of one split set against its targets (see module docstring)."""

    def __init__(self, task: HearTask, data: SplitSet, metrics: list[str]) -> None:
        self.task = task
        self.data = data
        self.metrics = metrics
        self.primary = metrics[0]
        self.is_event = task.is_event
        if self.is_event:
            assert data.offsets is not None and data.timestamps_ms is not None
            self.layout = FrameLayout(data.offsets, data.timestamps_ms)
            grid = task.evaluation_params.get("event_postprocessing_grid", DEFAULT_POSTPROCESSING)
            self.postprocessing = [
                (float(m), float(d)) for m in grid["median_filter_ms"] for d in grid["min_duration"]
            ]

    def _event_value(self, metric: str, events: Events) -> float:
        assert self.data.reference is not None
        n_files = len(self.data.files)
        return event_scores(metric, self.data.reference, events, n_files, self.task.n_labels)

    def choose_postprocessing(self, probs: np.ndarray) -> tuple[float, tuple[float, float]]:
        """Best primary score over the post-processing grid and the setting that gives it.

        Ties go to the larger setting, as hear-eval-kit's ``sort(reverse=True)`` of
        ``(score, setting)`` pairs; NaN counts as 0 (hear-eval-kit does the same).
        """
        decoded = decode_events(probs, self.layout, self.postprocessing)
        best: tuple[float, tuple[float, float]] | None = None
        sign = -1.0 if self.primary in MINIMISED else 1.0
        for setting, events in zip(self.postprocessing, decoded, strict=True):
            value = self._event_value(self.primary, events)
            value = 0.0 if np.isnan(value) else value
            if best is None or (sign * value, setting) > (sign * best[0], best[1]):
                best = (value, setting)
        assert best is not None
        return best

    def validation(self, probs: np.ndarray) -> tuple[np.ndarray, list[Any]]:
        """``(G, N, C)`` → ``(G,)`` primary scores and per-probe extras (post-processing)."""
        if not self.is_event:
            return scene_metric_batched(self.primary, probs, self.data.targets), [None] * len(probs)
        chosen = [self.choose_postprocessing(p) for p in probs]
        return np.array([c[0] for c in chosen]), [c[1] for c in chosen]

    def test(self, probs: np.ndarray, postprocessing: tuple[float, float] | None) -> dict[str, Any]:
        """Every metric of ``(N, C)`` probabilities (event tasks: decoded with ``postprocessing``)."""
        if not self.is_event:
            return {m: SCENE_METRICS[m](probs, self.data.targets) for m in self.metrics}
        if postprocessing is None:
            postprocessing = self.choose_postprocessing(probs)[1]
        events = decode_events(probs, self.layout, [postprocessing])[0]
        scores: dict[str, Any] = {}
        for m in self.metrics:
            if m not in EVENT_METRICS:
                continue
            value = self._event_value(m, events)
            # An F-measure without any estimated event is NaN in sed_eval (precision 0/0); its
            # recall is 0, so echoic reports 0 rather than letting one NaN void a mean.
            scores[m] = 0.0 if np.isnan(value) and m != "segment_1s_er" else value
        return scores

    def confusion(self, probs: np.ndarray) -> np.ndarray | None:
        """``(C, C)`` counts (row = true class, column = predicted) for multiclass scene tasks."""
        if self.is_event or self.task.prediction_type != "multiclass":
            return None
        n = self.task.n_labels
        out = np.zeros((n, n), np.int64)
        np.add.at(out, (self.data.labels, np.argmax(probs, 1)), 1)
        return out
