"""The scene mixer and the soundfont renderer produce what their labels say."""

from __future__ import annotations

import csv
import json
import struct

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from tasks_helpers import DATA, SAMPLE_RATE, have_fluidsynth


def test_envelope_finds_a_burst_in_silence_and_noise():
    from echoic.tasks.scenes import envelope

    sr = 16000
    rng = np.random.default_rng(0)
    x = np.zeros(5 * sr)
    x[int(1.23 * sr) : int(2.5 * sr)] = 0.3 * np.sin(np.arange(int(1.27 * sr)) * 0.2)
    env = envelope(x.astype(np.float32), sr)
    assert abs(env.start_s - 1.23) <= 0.01 and abs(env.end_s - 2.5) <= 0.01
    assert abs(env.rms_db - 20 * np.log10(0.3 / np.sqrt(2))) < 0.2
    x += 0.001 * rng.standard_normal(x.shape)  # a floor 43 dB down stays inactive
    env = envelope(x.astype(np.float32), sr)
    assert abs(env.start_s - 1.23) <= 0.01 and abs(env.end_s - 2.5) <= 0.01
    assert 0.2 < env.active_fraction < 0.3


@settings(max_examples=60, deadline=None)
@given(
    durations=st.lists(st.floats(0.05, 3.0), min_size=1, max_size=4),
    seed=st.integers(0, 2**31),
)
def test_placed_events_fit_and_never_overlap(durations, seed):
    from echoic.tasks.scenes import place_events

    gap, scene = 0.25, 10.0
    if sum(durations) + gap * (len(durations) + 1) > scene:
        with pytest.raises(ValueError):
            place_events(durations, scene, gap, np.random.default_rng(seed))
        return
    onsets = place_events(durations, scene, gap, np.random.default_rng(seed))
    ends = [o + d for o, d in zip(onsets, durations, strict=True)]
    assert onsets[0] >= gap - 1e-9 and ends[-1] <= scene - gap + 1e-9
    for end, nxt in zip(ends, onsets[1:], strict=False):
        assert nxt - end >= gap - 1e-9


def test_scene_events_are_where_the_labels_say(small_build):
    """Each labelled event, cut from the scene, matches its source clip (read here directly)."""
    task_dir = small_build["esc50_scenes"]
    with (task_dir / "scenes.csv").open(newline="") as f:
        parts = [r for r in csv.DictReader(f) if r["label"] != "(background)"]
    labels = {}
    for split in json.loads((task_dir / "task_metadata.json").read_text())["splits"]:
        labels |= json.loads((task_dir / f"{split}.json").read_text())
    checked = 0
    for part in parts:
        scene, split_sr = part["file"], SAMPLE_RATE
        events = labels[scene]
        start = float(part["onset_s"]) * 1000
        (event,) = [e for e in events if abs(e["start"] - start) < 0.01]
        assert event["label"] == part["label"]
        length = float(part["source_end_s"]) - float(part["source_start_s"])
        assert abs(event["end"] - event["start"] - length * 1000) < 0.01
        folder = task_dir / str(split_sr)
        (path,) = list(folder.glob(f"*/{scene}"))
        mix, sr = sf.read(str(path))
        src, src_sr = sf.read(str(DATA / part["source"]))
        assert sr == src_sr == 16000  # ESC-50 is 16 kHz: no resampling between the two
        a, n = round(float(part["source_start_s"]) * sr), round(length * sr)
        b = round(float(part["onset_s"]) * sr)
        cut, ref = mix[b + 80 : b + n - 80], src[a + 80 : a + n - 80]  # skip the 5 ms fades
        corr = np.dot(cut, ref) / (np.linalg.norm(cut) * np.linalg.norm(ref) + 1e-12)
        assert corr > 0.8, (scene, part["label"], corr)
        outside = np.ones(len(mix), bool)
        for e in events:
            outside[round(e["start"] / 1000 * sr) : round(e["end"] / 1000 * sr)] = False
        quiet = np.sqrt(np.mean(mix[outside] ** 2))
        assert np.sqrt(np.mean(cut**2)) > 1.5 * quiet  # events stand above the background
        checked += 1
    assert checked >= 10


def midi_events(data: bytes) -> list[tuple[int, bytes]]:
    """(absolute tick, event bytes) of a format-0 file with running status off (test reader)."""
    assert data[:4] == b"MThd" and struct.unpack(">IHHH", data[4:14]) == (6, 0, 1, 480)
    assert data[14:18] == b"MTrk"
    (length,) = struct.unpack(">I", data[18:22])
    track, i, tick, out = data[22:], 0, 0, []
    assert len(track) == length
    while i < len(track):
        delta = 0
        while True:
            byte = track[i]
            i += 1
            delta = (delta << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
        tick += delta
        status = track[i]
        size = 3 + track[i + 2] if status == 0xFF else (2 if status & 0xF0 == 0xC0 else 3)
        out.append((tick, track[i : i + size]))
        i += size
    return out


def test_midi_file_has_one_note_per_slot():
    from echoic.tasks.soundfont import Note, midi_bytes

    notes = [Note(0, 60, 100), Note(73, 81, 40), Note(32, 28, 127)]
    events = midi_events(midi_bytes(notes))
    on = [(t, e[1], e[2]) for t, e in events if e[0] == 0x90]
    off = [(t, e[1]) for t, e in events if e[0] == 0x80]
    programs = [e[1] for _, e in events if e[0] == 0xC0]
    assert on == [(0, 60, 100), (4320, 81, 40), (8640, 28, 127)]  # 4.5 s slots, 960 ticks/s
    assert off == [(2880, 60), (7200, 81), (11520, 28)]  # held 3 s
    assert programs == [0, 73, 32]
    assert events[-1] == (12960, b"\xff\x2f\x00")


@pytest.mark.skipif(not have_fluidsynth(), reason="fluidsynth or the soundfonts are not installed")
def test_rendered_notes_have_the_labelled_pitch():
    from echoic.tasks.soundfont import FLUIDR3, TIMGM6MB, Note, render_batch

    for font in (FLUIDR3, TIMGM6MB):
        notes = [Note(73, 69, 100), Note(73, 62, 100), Note(42, 48, 90)]  # flute A4, D4; cello C3
        clips = render_batch(notes, str(font), SAMPLE_RATE)
        assert clips.shape == (3, 4 * SAMPLE_RATE)
        for note, x in zip(notes, clips, strict=True):
            assert abs(np.max(np.abs(x)) - 0.5) < 1e-6  # peak-normalised
            seg = x[SAMPLE_RATE // 2 : 2 * SAMPLE_RATE] * np.hanning(3 * SAMPLE_RATE // 2)
            spectrum = np.abs(np.fft.rfft(seg, n=1 << 17))
            freqs = np.fft.rfftfreq(1 << 17, 1 / SAMPLE_RATE)
            f0 = 440.0 * 2 ** ((note.pitch - 69) / 12)
            band = (freqs > f0 * 0.97) & (freqs < f0 * 1.03)
            below = (freqs > 20) & (freqs < f0 * 0.9)
            assert spectrum[band].max() > 3 * spectrum[below].max(), (font.name, note)
            onset = np.flatnonzero(np.abs(x) > 1e-3)[0]
            assert onset < 0.02 * SAMPLE_RATE  # the note starts at the clip start
            tail = x[int(3.9 * SAMPLE_RATE) :]
            assert np.max(np.abs(tail)) < 0.05  # released at 3 s, silenced by 4 s
