"""Sound-event post-processing and metrics, vectorised, with sed_eval's exact definitions.

Post-processing (hear-eval-kit's ``create_events_from_prediction``): per file, frame
probabilities are median-filtered over ``round(median_filter_ms / mean frame hop)`` frames
(scipy ``median_filter``, reflect mode), thresholded (``p > 0.5``), and every run of consecutive
active frames of a label becomes an event from the first to the last frame's timestamp; events
shorter than ``min_duration`` ms are dropped. Files with the same frame count and filter width are
processed as one ``(F, T, C)`` array.

Metrics (``sed_eval`` 0.2.1 semantics, verified against the package in the tests):

* onset F-measure: per file and label, a reference and an estimated event match when
  ``|onset_ref - onset_est| <= collar`` (seconds); the number of true positives is the maximum
  one-to-one matching (sed_eval's "optimal" matching), which on a line is what a greedy sweep in
  onset order finds. Counts are summed over files (micro average); precision is NaN without
  estimated events, as in sed_eval.
* segment error rate: per file, both event lists are rasterised on ``resolution``-second segments
  (``floor(onset / r)`` to ``ceil(offset / r)``) over ``ceil(max offset / r)`` segments, and
  per segment ``S = min(Nref, Nsys) - Ntp``, ``D = max(0, Nref - Nsys)``, ``I = max(0, Nsys -
  Nref)``; ER = (S + D + I) / Nref summed over all segments of all files.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.ndimage import median_filter

EPS = float(np.spacing(1))


@dataclass
class Events:
    """Events of a split: parallel arrays; ``file`` indexes the split's file list."""

    file: np.ndarray  # (E,) int64
    label: np.ndarray  # (E,) int64
    start_ms: np.ndarray  # (E,) float64
    end_ms: np.ndarray  # (E,) float64

    def __len__(self) -> int:
        return int(self.file.shape[0])

    @classmethod
    def empty(cls) -> Events:
        z = np.zeros(0, np.int64)
        return cls(z, z.copy(), np.zeros(0), np.zeros(0))

    def to_lists(self, files: list[str], vocabulary: list[str]) -> dict[str, list[dict[str, Any]]]:
        """HEAR's ``{file: [{"label", "start", "end"}]}`` form (every file present)."""
        out: dict[str, list[dict[str, Any]]] = {f: [] for f in files}
        for f, lab, s, e in zip(
            self.file.tolist(),
            self.label.tolist(),
            self.start_ms.tolist(),
            self.end_ms.tolist(),
            strict=True,
        ):
            out[files[f]].append({"label": vocabulary[lab], "start": s, "end": e})
        return out


def reference_events(
    split: dict[str, list[dict[str, Any]]], files: list[str], label_index: dict[str, int]
) -> Events:
    """The labelled events of ``files`` from an event split's json content."""
    rows = [
        (i, label_index[str(e["label"])], float(e["start"]), float(e["end"]))
        for i, f in enumerate(files)
        for e in split[f]
    ]
    if not rows:
        return Events.empty()
    f, lab, s, e = zip(*rows, strict=True)
    return Events(np.array(f), np.array(lab), np.array(s), np.array(e))


def frame_targets(
    split: dict[str, list[dict[str, Any]]],
    files: list[str],
    offsets: np.ndarray,
    timestamps_ms: np.ndarray,
    label_index: dict[str, int],
) -> np.ndarray:
    """``(sum T, C)`` float32 multi-hot frame labels: a frame at ``t`` carries every event with
    ``start <= t < end + 0.0001`` (hear-eval-kit's interval-tree rule)."""
    out = np.zeros((timestamps_ms.shape[0], len(label_index)), np.float32)
    for i, f in enumerate(files):
        t = timestamps_ms[offsets[i] : offsets[i + 1]]
        for e in split[f]:
            inside = (t >= float(e["start"])) & (t < float(e["end"]) + 0.0001)
            out[offsets[i] : offsets[i + 1], label_index[str(e["label"])]][inside] = 1.0
    return out


class FrameLayout:
    """How a split's frames group into files, precomputed once for repeated decoding."""

    def __init__(self, offsets: np.ndarray, timestamps_ms: np.ndarray) -> None:
        self.offsets = np.asarray(offsets, np.int64)
        self.timestamps_ms = np.asarray(timestamps_ms, np.float64)
        self.n_files = len(self.offsets) - 1
        lengths = np.diff(self.offsets)
        self.hops = np.array(
            [
                float(np.mean(np.diff(self.timestamps_ms[a:b]))) if b - a > 1 else 0.0
                for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True)
            ]
        )
        self.groups: dict[int, list[int]] = defaultdict(list)
        for i, n in enumerate(lengths.tolist()):
            self.groups[n].append(i)

    def filter_width(self, file: int, median_filter_ms: float) -> int:
        hop = self.hops[file]
        if not median_filter_ms or hop <= 0:
            return 0
        return round(median_filter_ms / hop)


def decode_events(
    probs: np.ndarray,
    layout: FrameLayout,
    postprocessing: list[tuple[float, float]],
    threshold: float = 0.5,
) -> list[Events]:
    """Events from ``(sum T, C)`` frame probabilities, one :class:`Events` per
    ``(median_filter_ms, min_duration_ms)`` pair of ``postprocessing``."""
    by_median: dict[float, list[int]] = defaultdict(list)
    for k, (median_ms, _) in enumerate(postprocessing):
        by_median[median_ms].append(k)
    results: list[Events | None] = [None] * len(postprocessing)
    for median_ms, ks in by_median.items():
        runs = _runs(probs, layout, median_ms, threshold)
        for k in ks:
            min_dur = postprocessing[k][1]
            f, lab, s, e = runs
            keep = (e - s) >= min_dur
            results[k] = Events(f[keep], lab[keep], s[keep], e[keep])
    return [r if r is not None else Events.empty() for r in results]


def _runs(
    probs: np.ndarray, layout: FrameLayout, median_ms: float, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    parts: list[tuple[np.ndarray, ...]] = []
    for length, files in layout.groups.items():
        if length == 0:
            continue
        by_width: dict[int, list[int]] = defaultdict(list)
        for i in files:
            by_width[layout.filter_width(i, median_ms)].append(i)
        for width, members in by_width.items():
            idx = np.array(members)
            rows = layout.offsets[idx][:, None] + np.arange(length)[None]  # (F, T)
            p = probs[rows]  # (F, T, C)
            if width:
                p = median_filter(p, size=(1, width, 1))
            active = (p > threshold).transpose(0, 2, 1).astype(np.int8)  # (F, C, T)
            padded = np.pad(active, ((0, 0), (0, 0), (1, 1)))
            d = np.diff(padded, axis=2)
            fs, cs, ts = np.nonzero(d == 1)
            _, _, te = np.nonzero(d == -1)  # same (f, c) order: runs pair up
            times = layout.timestamps_ms[rows]  # (F, T)
            parts.append((idx[fs], cs, times[fs, ts], times[fs, te - 1]))
    if not parts:
        z = np.zeros(0, np.int64)
        return z, z.copy(), np.zeros(0), np.zeros(0)
    return tuple(np.concatenate(c) for c in zip(*parts, strict=True))  # type: ignore[return-value]


def onset_f_measure(
    reference: Events, estimated: Events, collar_s: float
) -> tuple[float, float, float]:
    """``(f_measure, precision, recall)`` of event onsets within ``collar_s`` seconds (micro)."""
    n_ref, n_sys = len(reference), len(estimated)
    tp = _matched_onsets(reference, estimated, collar_s)
    precision = float(tp / n_sys) if n_sys else float("nan")
    recall = float(tp / n_ref) if n_ref else float("nan")
    if precision == 0 and recall == 0:
        return 0.0, precision, recall
    return float(2 * precision * recall / (precision + recall)), precision, recall


def _matched_onsets(reference: Events, estimated: Events, collar_s: float) -> int:
    if not len(reference) or not len(estimated):
        return 0
    n_labels = int(max(reference.label.max(), estimated.label.max())) + 1
    r_key = reference.file * n_labels + reference.label
    e_key = estimated.file * n_labels + estimated.label
    r_on = reference.start_ms / 1000.0
    e_on = estimated.start_ms / 1000.0
    r_order = np.lexsort((r_on, r_key))
    e_order = np.lexsort((e_on, e_key))
    e_key_sorted = e_key[e_order]
    keys = np.unique(r_key)
    lo = np.searchsorted(e_key_sorted, keys, side="left").tolist()
    hi = np.searchsorted(e_key_sorted, keys, side="right").tolist()
    bounds = dict(zip(keys.tolist(), zip(lo, hi, strict=True), strict=True))
    pointer = {k: b[0] for k, b in bounds.items()}
    e_times = e_on[e_order].tolist()
    tp = 0
    for key, r in zip(r_key[r_order].tolist(), r_on[r_order].tolist(), strict=True):
        j, end = pointer[key], bounds[key][1]
        # estimated onsets too early for this reference are too early for every later one
        while j < end and e_times[j] < r and math.fabs(r - e_times[j]) > collar_s:
            j += 1
        if j < end and math.fabs(r - e_times[j]) <= collar_s:
            tp += 1
            j += 1
        pointer[key] = j
    return tp


def segment_error_rate(
    reference: Events, estimated: Events, n_files: int, n_labels: int, resolution_s: float = 1.0
) -> float:
    """sed_eval's overall segment-based error rate over ``n_files`` files (see module doc)."""
    if n_files == 0:
        return float("nan")
    length = np.zeros(n_files)
    for ev in (reference, estimated):
        if len(ev):
            np.maximum.at(length, ev.file, ev.end_ms / 1000.0)
    n_seg = np.ceil(length * 1 / float(resolution_s)).astype(np.int64)
    s_max = int(n_seg.max()) if n_files else 0
    if s_max == 0:
        return 0.0 if len(reference) else float("nan")
    rolls = [_roll(ev, n_files, n_labels, s_max, resolution_s) for ev in (reference, estimated)]
    valid = np.arange(s_max)[None, :] < n_seg[:, None]  # (F, S)
    ref, sys = rolls
    n_ref = (ref.sum(-1) * valid).sum()
    n_sys_seg = sys.sum(-1)
    n_ref_seg = ref.sum(-1)
    n_tp_seg = (ref & sys).sum(-1)
    subs = ((np.minimum(n_ref_seg, n_sys_seg) - n_tp_seg) * valid).sum()
    dels = (np.maximum(0, n_ref_seg - n_sys_seg) * valid).sum()
    ins = (np.maximum(0, n_sys_seg - n_ref_seg) * valid).sum()
    n_ref = float(n_ref)
    return float(
        float(subs) / (n_ref + EPS) + float(dels) / (n_ref + EPS) + float(ins) / (n_ref + EPS)
    )


def _roll(ev: Events, n_files: int, n_labels: int, s_max: int, res: float) -> np.ndarray:
    """``(F, S, C)`` bool activity of events on ``res``-second segments."""
    diff = np.zeros((n_files, s_max + 1, n_labels), np.int32)
    if len(ev):
        on = np.floor(ev.start_ms / 1000.0 * 1 / float(res)).astype(np.int64)
        off = np.ceil(ev.end_ms / 1000.0 * 1 / float(res)).astype(np.int64)
        keep = off > on
        on, off = np.clip(on[keep], 0, s_max), np.clip(off[keep], 0, s_max)
        np.add.at(diff, (ev.file[keep], on, ev.label[keep]), 1)
        np.add.at(diff, (ev.file[keep], off, ev.label[keep]), -1)
    return np.cumsum(diff, axis=1)[:, :s_max] > 0


def event_scores(
    metric: str, reference: Events, estimated: Events, n_files: int, n_labels: int
) -> float:
    """Value of an event metric by HEAR name (``event_onset_200ms_fms`` …)."""
    if metric == "event_onset_200ms_fms":
        return onset_f_measure(reference, estimated, 0.2)[0]
    if metric == "event_onset_50ms_fms":
        return onset_f_measure(reference, estimated, 0.05)[0]
    if metric == "segment_1s_er":
        return segment_error_rate(reference, estimated, n_files, n_labels, 1.0)
    raise ValueError(f"unknown event metric {metric!r}")
