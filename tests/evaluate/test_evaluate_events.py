"""Event metrics and post-processing against sed_eval (PyPI) and a per-file reference loop."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.ndimage import median_filter

from echoic.evaluate.events import (
    Events,
    FrameLayout,
    decode_events,
    frame_targets,
    onset_f_measure,
    segment_error_rate,
)

LABELS = ["bark", "cough", "horn", "knock"]


def random_events(rng: np.random.Generator, n_files: int, per_file: int) -> Events:
    rows = []
    for f in range(n_files):
        for _ in range(rng.integers(0, per_file + 1)):
            start = float(rng.choice([rng.uniform(0, 9000), 50.0 * rng.integers(0, 180)]))
            dur = float(rng.choice([rng.uniform(10, 3000), 250.0 * rng.integers(0, 8)]))
            rows.append((f, int(rng.integers(0, len(LABELS))), start, start + dur))
    if not rows:
        return Events.empty()
    f, lab, s, e = zip(*rows, strict=True)
    return Events(np.array(f), np.array(lab), np.array(s), np.array(e))


def jittered(rng: np.random.Generator, ref: Events, n_files: int) -> Events:
    """Estimates near the references (some exactly on the collar edges), some dropped, relabelled
    or moved, plus random insertions."""
    keep = rng.random(len(ref)) > 0.2
    shift = rng.choice([0.0, 50.0, -50.0, 200.0, -200.0, 199.9, 250.0], size=len(ref))
    shift = np.where(rng.random(len(ref)) < 0.4, rng.normal(0, 150, len(ref)), shift)
    label = np.where(rng.random(len(ref)) < 0.1, rng.integers(0, len(LABELS), len(ref)), ref.label)
    moved = Events(
        ref.file[keep],
        label[keep],
        np.maximum(0, ref.start_ms + shift)[keep],
        (ref.end_ms + rng.normal(0, 300, len(ref)))[keep],
    )
    extra = random_events(rng, n_files, 2)
    moved.end_ms = np.maximum(moved.end_ms, moved.start_ms)
    return Events(
        *(
            np.concatenate([getattr(moved, k), getattr(extra, k)])
            for k in ("file", "label", "start_ms", "end_ms")
        )
    )


def sed_eval_scores(ref: Events, est: Events, n_files: int) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sed_eval = pytest.importorskip("sed_eval")

    def items(ev: Events, f: int) -> list[dict]:
        return [
            {
                "event_label": LABELS[lab],
                "event_onset": s / 1000.0,
                "event_offset": e / 1000.0,
                "file": f"f{f}.wav",
            }
            for ff, lab, s, e in zip(ev.file, ev.label, ev.start_ms, ev.end_ms, strict=True)
            if ff == f
        ]

    onset200 = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=LABELS, t_collar=0.2, evaluate_onset=True, evaluate_offset=False
    )
    onset50 = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=LABELS, t_collar=0.05, evaluate_onset=True, evaluate_offset=False
    )
    segment = sed_eval.sound_event.SegmentBasedMetrics(event_label_list=LABELS, time_resolution=1.0)
    for f in range(n_files):
        r, e = items(ref, f), items(est, f)
        for m in (onset200, onset50, segment):
            m.evaluate(reference_event_list=r, estimated_event_list=e)
    return {
        "f200": onset200.results_overall_metrics()["f_measure"]["f_measure"],
        "p200": onset200.results_overall_metrics()["f_measure"]["precision"],
        "f50": onset50.results_overall_metrics()["f_measure"]["f_measure"],
        "er": segment.results_overall_metrics()["error_rate"]["error_rate"],
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_event_metrics_match_sed_eval(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_files = 25
    ref = random_events(rng, n_files, 4)
    est = jittered(rng, ref, n_files)
    want = sed_eval_scores(ref, est, n_files)
    f200, p200, _ = onset_f_measure(ref, est, 0.2)
    assert f200 == pytest.approx(want["f200"], abs=1e-6)
    assert p200 == pytest.approx(want["p200"], abs=1e-6)
    assert onset_f_measure(ref, est, 0.05)[0] == pytest.approx(want["f50"], abs=1e-6)
    er = segment_error_rate(ref, est, n_files, len(LABELS), 1.0)
    assert er == pytest.approx(want["er"], abs=1e-6)
    assert 0 < want["f200"] < 1  # the random lists exercise partial matches


def test_event_metrics_edge_cases_match_sed_eval() -> None:
    ref = Events(
        np.array([0, 0, 1]),
        np.array([0, 0, 2]),
        np.array([1000.0, 1100.0, 0.0]),
        np.array([2000.0, 2100.0, 500.0]),
    )
    # two estimates competing for two references (optimal matching must find both), one on the
    # 200 ms edge, and a file (2) with estimates only
    est = Events(
        np.array([0, 0, 1, 2]),
        np.array([0, 0, 2, 1]),
        np.array([1050.0, 1300.0, 200.0, 4000.0]),
        np.array([1800.0, 1500.0, 700.0, 4500.0]),
    )
    want = sed_eval_scores(ref, est, 3)
    assert onset_f_measure(ref, est, 0.2)[0] == pytest.approx(want["f200"], abs=1e-9)
    assert segment_error_rate(ref, est, 3, len(LABELS)) == pytest.approx(want["er"], abs=1e-9)
    no_output = onset_f_measure(ref, Events.empty(), 0.2)
    assert np.isnan(no_output[0]) and np.isnan(no_output[1]) and no_output[2] == 0.0


def hear_events_one_file(pred: np.ndarray, ts: np.ndarray, median_ms: float, min_dur: float):
    """hear-eval-kit's create_events_from_prediction, written out per file and label."""
    width = round(median_ms / np.mean(np.diff(ts)))
    if width:
        pred = median_filter(pred, size=(width, 1))
    active = pred > 0.5
    out = []
    for c in range(pred.shape[1]):
        idx = np.where(active[:, c])[0]
        if not len(idx):
            continue
        groups = np.split(idx, np.where(np.diff(idx) != 1)[0] + 1)
        for g in groups:
            if ts[g[-1]] - ts[g[0]] >= min_dur:
                out.append((c, ts[g[0]], ts[g[-1]]))
    return sorted(out)


def test_decode_events_matches_per_file_reference() -> None:
    rng = np.random.default_rng(3)
    lengths = [250, 250, 120, 250, 37]
    hops = [40.0, 40.0, 40.0, 50.0, 40.0]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    ts = np.concatenate([20.0 + h * np.arange(n) for n, h in zip(lengths, hops, strict=True)])
    # smooth random activity so that runs of many lengths appear
    raw = rng.random((offsets[-1], 3))
    probs = np.stack([np.convolve(raw[:, c], np.ones(7) / 7, mode="same") for c in range(3)], 1)
    probs = (probs - 0.5) * 3 + 0.5
    layout = FrameLayout(offsets, ts)
    pp = [(250.0, 125.0), (250.0, 250.0), (0.0, 60.0)]
    decoded = decode_events(probs, layout, pp)
    for (median_ms, min_dur), ev in zip(pp, decoded, strict=True):
        for f in range(len(lengths)):
            a, b = offsets[f], offsets[f + 1]
            want = hear_events_one_file(probs[a:b], ts[a:b], median_ms, min_dur)
            mine = sorted(
                (int(c), float(s), float(e))
                for ff, c, s, e in zip(ev.file, ev.label, ev.start_ms, ev.end_ms, strict=True)
                if ff == f
            )
            assert mine == want
        assert len(ev) > 5


def test_frame_targets_follow_hear_interval_rule() -> None:
    split = {"a.wav": [{"label": "cough", "start": 100.0, "end": 300.0}], "b.wav": []}
    ts = np.array([0.0, 100.0, 200.0, 300.0, 300.00009, 300.0002, 0.0, 100.0])
    offsets = np.array([0, 6, 8])
    y = frame_targets(split, ["a.wav", "b.wav"], offsets, ts, {"bark": 0, "cough": 1})
    assert y[:, 1].tolist() == [0, 1, 1, 1, 1, 0, 0, 0]
    assert y[:, 0].sum() == 0
