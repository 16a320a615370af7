"""Audio of score snippets for ``sheet_snippets``: the snippets' notes as one MIDI file per piece,
rendered by the fluidsynth command line through FluidR3_GM.

Every snippet of a piece gets its own :data:`SLOT_S`-second slot of one format-0 MIDI file (960
ticks per second: 480 per quarter note at 120 bpm, so ticks are seconds × 960 whatever the score's
tempo): each part plays on its own channel (part ``i`` on channel ``i``, so that two voices on one
pitch do not cut each other's notes), every channel with the acoustic grand piano (GM program 0)
at velocity :data:`VELOCITY`; notes start and stop where the snippet's notes do at
:data:`SECONDS_PER_QUARTER` seconds per quarter note, and "all sound off" ends the slot's sound
at the snippet's end. ``fluidsynth -R 0 -C 0`` (no reverb, no chorus, float output: no dither)
renders the file; a snippet's clip is the channel mean of its slot's first ``duration`` seconds,
peak-normalised to :data:`PEAK` and zero-padded to the task's clip length. The bytes depend only on
the notes, so a rebuild of a piece gives the same clips.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from echoic.tasks.base import TaskDataError, fit_length, n_samples
from echoic.tasks.soundfont import FLUIDR3, midi_file, render_midi_mono

TEMPO_BPM = 100.0
SECONDS_PER_QUARTER = 60.0 / TEMPO_BPM
TICKS_PER_S = 960
SLOT_S = 6.0
VELOCITY = 80
PROGRAM = 0  # acoustic grand piano
PEAK = 0.5
MAX_CHANNELS = 9  # channels 0-8: channel 9 is GM percussion

SnippetNotes = Sequence[tuple[int, int, float, float]]
"""One snippet's notes: ``(channel, MIDI pitch, onset s, end s)``, times from its start."""


def _merged(notes: SnippetNotes) -> list[tuple[int, int, int, int]]:
    """``(channel, pitch, on tick, off tick)`` with overlapping notes of one channel and pitch
    merged into one (a MIDI note-off would end both)."""
    spans: dict[tuple[int, int], list[list[int]]] = {}
    for channel, pitch, onset, end in sorted(notes, key=lambda n: (n[0], n[1], n[2])):
        on, off = round(onset * TICKS_PER_S), round(end * TICKS_PER_S)
        if off <= on:
            continue
        runs = spans.setdefault((channel, pitch), [])
        if runs and on <= runs[-1][1]:
            runs[-1][1] = max(runs[-1][1], off)
        else:
            runs.append([on, off])
    return [(c, p, on, off) for (c, p), runs in spans.items() for on, off in runs]


def midi_bytes(snippets: Sequence[tuple[float, SnippetNotes]]) -> bytes:
    """A format-0 MIDI file playing ``(duration s, notes)`` snippets one per :data:`SLOT_S` slot."""
    channels = sorted({n[0] for _, notes in snippets for n in notes})
    if channels and (channels[0] < 0 or channels[-1] >= MAX_CHANNELS):
        raise ValueError(f"channels must be in 0..{MAX_CHANNELS - 1}; found {channels}")
    slot = round(SLOT_S * TICKS_PER_S)
    # (tick, order, data): at one tick, controller resets and program changes come first, then
    # note-offs, then note-ons, then "all sound off"
    events: list[tuple[int, int, bytes]] = [(0, 0, b"\xff\x51\x03\x07\xa1\x20")]  # 120 bpm
    for index, (duration, notes) in enumerate(snippets):
        start = index * slot
        cut = start + round(duration * TICKS_PER_S)
        if cut >= start + slot:
            raise ValueError(f"snippet {index} lasts {duration} s; expected < {SLOT_S} s")
        for channel in range(MAX_CHANNELS):
            events += [
                (start, 1, bytes([0xB0 | channel, 121, 0])),  # reset all controllers
                (start, 2, bytes([0xC0 | channel, PROGRAM])),
                (cut, 5, bytes([0xB0 | channel, 120, 0])),  # all sound off
            ]
        for channel, pitch, on, off in _merged(notes):
            off = min(off, cut - start)
            if off <= on:
                continue
            events += [
                (start + on, 4, bytes([0x90 | channel, pitch, VELOCITY])),
                (start + off, 3, bytes([0x80 | channel, pitch, 0])),
            ]
    events.append((len(snippets) * slot, 9, b"\xff\x2f\x00"))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    return midi_file([(tick, data) for tick, _, data in events])


def render_snippets(
    snippets: Sequence[tuple[float, SnippetNotes]], sample_rate: int, clip_s: float
) -> np.ndarray:
    """``(len(snippets), clip_s * sample_rate)`` float32 clips of one fluidsynth run."""
    mono = render_midi_mono(
        midi_bytes(snippets), str(FLUIDR3), sample_rate, f"{len(snippets)} snippets"
    )
    slot = n_samples(SLOT_S, sample_rate)
    mono = np.pad(mono, (0, max(0, len(snippets) * slot - mono.shape[0])))
    out = np.zeros((len(snippets), n_samples(clip_s, sample_rate)), dtype=np.float32)
    for i, (duration, _) in enumerate(snippets):
        x = mono[i * slot : i * slot + n_samples(duration, sample_rate)]
        peak = float(np.max(np.abs(x))) if x.size else 0.0
        if peak < 1e-4:
            raise TaskDataError(
                f"snippet {i} of a piece rendered silence (peak {peak:.1e}); expected notes"
            )
        out[i] = fit_length((x * (PEAK / peak)).astype(np.float32), out.shape[1])
    return out
