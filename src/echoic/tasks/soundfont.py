"""NSynth-like single notes rendered with the fluidsynth command line from Debian's GM soundfonts.

Rendering: notes are written by hand into a standard MIDI file (format 0, 960 ticks per second),
one note per 4.5 s slot on channel 0: program change and note-on at the slot start, note-off after
:data:`HOLD_S` (3 s), "all sound off" at 4 s. ``fluidsynth -ni -R 0 -C 0 -O float -T raw`` renders
the file (reverb and chorus off, float output so there is no dither) and each slot's first
:data:`NOTE_S` seconds become one clip: the channel mean (mono), peak-normalised to -6 dBFS so that
loudness differences between soundfonts are not a shortcut. Notes are rendered in fixed batches
(a batch is re-rendered whole when any of its clips is missing), so every clip's bytes depend only
on the plan, not on which clips an earlier run already wrote. Soundfont samples are loaded on use
(``synth.dynamic-sample-loading``), which halves FluidR3's start-up time.

Soundfonts: FluidR3_GM (Debian ``fluid-soundfont-gm``, MIT) for train/valid, TimGM6mb (Debian
``timgm6mb-soundfont``, GPL-2, Tim Brechbill) for test: a cross-soundfont generalisation test.
MuseScore_General was the first choice for test but is built on Fluid R3 Mono: for 30 of the 44
programs below its notes correlate at >= 0.98 (normalised cross-correlation of the first second)
with FluidR3's, i.e. the same samples, so it would not test generalisation. TimGM6mb's samples are
independent (none >= 0.98, median 0.43; MuseScore_General: median 0.997).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from echoic.tasks.base import Clip, TaskBuilder, TaskDataError, n_samples

FLUIDR3 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
TIMGM6MB = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
SOUNDFONT_PACKAGES = {FLUIDR3: "fluid-soundfont-gm", TIMGM6MB: "timgm6mb-soundfont"}
SOUNDFONT_OF_SPLIT = {"train": FLUIDR3, "valid": FLUIDR3, "test": TIMGM6MB}
NOTE_S = 4.0
HOLD_S = 3.0
SLOT_S = 4.5
TICKS_PER_S = 960  # 480 ticks per quarter note at 120 bpm
BATCH = 128
PEAK = 0.5
VELOCITY_RANGE = (40, 127)


@dataclass(frozen=True)
class Program:
    """A GM program (0-based number), its NSynth-style instrument family and a playable range."""

    number: int
    name: str
    family: str
    low: int
    high: int
    valid: bool = False  # held out of train (FluidR3) as the validation instrument of its family
    sub_octave: bool = False  # sounds an octave below the note (16' organ stop): no pitch task


def _p(
    number: int, name: str, family: str, low: int, high: int, valid: bool = False, sub: bool = False
) -> Program:
    return Program(number, name, family, low, high, valid, sub)


# Eleven families as in NSynth, four GM programs each; one per family is the validation program.
PROGRAMS: tuple[Program, ...] = (
    _p(0, "acoustic_grand_piano", "keyboard", 33, 96),
    _p(2, "electric_grand_piano", "keyboard", 33, 96, valid=True),
    _p(4, "electric_piano_1", "keyboard", 33, 96),
    _p(6, "harpsichord", "keyboard", 41, 89),
    _p(8, "celesta", "mallet", 60, 96),
    _p(11, "vibraphone", "mallet", 53, 89),
    _p(12, "marimba", "mallet", 45, 96, valid=True),
    _p(13, "xylophone", "mallet", 65, 96),
    _p(16, "drawbar_organ", "organ", 36, 96, sub=True),
    _p(17, "percussive_organ", "organ", 36, 96, valid=True, sub=True),
    _p(19, "church_organ", "organ", 36, 96),
    _p(20, "reed_organ", "organ", 36, 84),
    _p(24, "nylon_guitar", "guitar", 40, 79),
    _p(25, "steel_guitar", "guitar", 40, 79),
    _p(26, "jazz_guitar", "guitar", 40, 79, valid=True),
    _p(27, "clean_electric_guitar", "guitar", 40, 79),
    _p(32, "acoustic_bass", "bass", 28, 55),
    _p(33, "finger_bass", "bass", 28, 60),
    _p(34, "pick_bass", "bass", 28, 60, valid=True),
    _p(35, "fretless_bass", "bass", 28, 60),
    _p(40, "violin", "string", 55, 93),  # FluidR3 violin is silent at 94
    _p(41, "viola", "string", 48, 84, valid=True),
    _p(42, "cello", "string", 36, 72),
    _p(48, "string_ensemble", "string", 36, 96),
    _p(56, "trumpet", "brass", 55, 82),
    _p(57, "trombone", "brass", 40, 72),
    _p(60, "french_horn", "brass", 41, 77, valid=True),
    _p(61, "brass_section", "brass", 40, 84),
    _p(64, "soprano_sax", "reed", 56, 87),
    _p(65, "alto_sax", "reed", 49, 81, valid=True),
    _p(68, "oboe", "reed", 58, 91),
    _p(71, "clarinet", "reed", 50, 91),
    _p(72, "piccolo", "flute", 74, 102),
    _p(73, "flute", "flute", 60, 96),
    _p(74, "recorder", "flute", 60, 96, valid=True),
    _p(75, "pan_flute", "flute", 60, 96),
    _p(80, "square_lead", "synth_lead", 36, 96),
    _p(81, "sawtooth_lead", "synth_lead", 36, 96),
    _p(82, "calliope_lead", "synth_lead", 48, 96, valid=True),
    _p(84, "charang_lead", "synth_lead", 36, 96),
    _p(52, "choir_aahs", "vocal", 48, 79),
    _p(53, "voice_oohs", "vocal", 48, 79, valid=True),
    _p(54, "synth_voice", "vocal", 48, 84),
    _p(85, "voice_lead", "vocal", 48, 84),
)


def programs_of_split(split: str) -> list[Program]:
    """train: the 33 non-validation programs; valid: the 11 validation ones; test: all 44."""
    if split == "train":
        return [p for p in PROGRAMS if not p.valid]
    if split == "valid":
        return [p for p in PROGRAMS if p.valid]
    return list(PROGRAMS)


@dataclass(frozen=True)
class Note:
    program: int
    pitch: int
    velocity: int


@dataclass(frozen=True)
class NoteRecipe:
    """Where a clip comes from: ``batch[slot]`` rendered with ``soundfont``."""

    soundfont: str
    batch: tuple[Note, ...]
    slot: int


def note_name(split: str, index: int, note: Note) -> str:
    return f"{split}_{index:04d}_p{note.program:03d}_n{note.pitch:03d}_v{note.velocity:03d}.wav"


def with_recipes(planned: list[tuple[str, Note, Clip]]) -> list[Clip]:
    """Attach :class:`NoteRecipe` to planned clips: notes of one soundfont in plan order are cut
    into batches of :data:`BATCH`."""
    by_font: dict[Path, list[int]] = {}
    for i, (split, _, _) in enumerate(planned):
        by_font.setdefault(SOUNDFONT_OF_SPLIT[split], []).append(i)
    out: list[Clip | None] = [None] * len(planned)
    for font, indices in by_font.items():
        for start in range(0, len(indices), BATCH):
            chunk = indices[start : start + BATCH]
            batch = tuple(planned[i][1] for i in chunk)
            for slot, i in enumerate(chunk):
                clip = planned[i][2]
                out[i] = Clip(
                    clip.split,
                    clip.name,
                    clip.labels,
                    sources=clip.sources,
                    group=clip.group,
                    recipe=NoteRecipe(str(font), batch, slot),
                )
    return [c for c in out if c is not None]


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))


def midi_bytes(notes: Sequence[Note]) -> bytes:
    """A format-0 standard MIDI file playing ``notes`` one per :data:`SLOT_S` slot on channel 0."""
    slot, hold, cut = (round(s * TICKS_PER_S) for s in (SLOT_S, HOLD_S, NOTE_S))
    events: list[tuple[int, bytes]] = [(0, b"\xff\x51\x03\x07\xa1\x20")]  # 500000 us per beat
    for i, note in enumerate(notes):
        t = i * slot
        events += [
            (t, bytes([0xB0, 121, 0])),  # reset all controllers
            (t, bytes([0xC0, note.program])),
            (t, bytes([0x90, note.pitch, note.velocity])),
            (t + hold, bytes([0x80, note.pitch, 0])),
            (t + cut, bytes([0xB0, 120, 0])),  # all sound off
        ]
    events.append((len(notes) * slot, b"\xff\x2f\x00"))
    return midi_file(events)


def midi_file(events: Sequence[tuple[int, bytes]]) -> bytes:
    """A format-0 standard MIDI file (480 ticks per beat) of ``(tick, event bytes)`` in time order,
    end-of-track included; ticks become variable-length delta times."""
    track, last = b"", 0
    for tick, data in events:
        track += _vlq(tick - last) + data
        last = tick
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480)
    return header + b"MTrk" + struct.pack(">I", len(track)) + track


def check_renderer() -> None:
    """Raise :class:`TaskDataError` naming the Debian package when fluidsynth or a font is absent."""
    if shutil.which("fluidsynth") is None:
        raise TaskDataError(
            "the fluidsynth program was not found on PATH; it renders the soundfont tasks. "
            "Install the Debian package: apt-get install fluidsynth (or `make apt`)"
        )
    for font, package in SOUNDFONT_PACKAGES.items():
        if not font.is_file():
            raise TaskDataError(
                f"soundfont {font} not found; install the Debian package: apt-get install "
                f"{package} (or `make apt`)"
            )


def render_midi_mono(
    midi: bytes,
    soundfont: str,
    sample_rate: int,
    what: str,
    reverb: bool = False,
    timeout_s: float = 600.0,
) -> np.ndarray:
    """Mono float64 audio of one ``fluidsynth`` run over ``midi`` (chorus off, reverb optional).

    ``-O float -T raw``: float output, so no dither; the stereo output is averaged. ``what`` names
    the batch in the :class:`TaskDataError` raised when fluidsynth fails or runs over
    ``timeout_s``.
    """
    with tempfile.TemporaryDirectory(prefix="echoic-fluidsynth-") as tmp:
        mid, raw = Path(tmp) / "in.mid", Path(tmp) / "out.raw"
        mid.write_bytes(midi)
        cmd = [
            "fluidsynth", "-ni", "-q", "-R", "1" if reverb else "0", "-C", "0", "-g", "0.5",
            "-r", str(sample_rate), "-o", "synth.dynamic-sample-loading=1",
            "-O", "float", "-T", "raw", "-F", str(raw), soundfont, str(mid),
        ]  # fmt: skip
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise TaskDataError(f"fluidsynth ran over {timeout_s:g} s rendering {what}") from exc
        if done.returncode != 0 or not raw.is_file():
            raise TaskDataError(
                f"fluidsynth failed (exit {done.returncode}) rendering {what} with "
                f"{soundfont}: {done.stderr.strip()[-500:]}"
            )
        stereo = np.fromfile(raw, dtype="<f4").reshape(-1, 2)
    return stereo.astype(np.float64).mean(axis=1)


def render_batch(notes: Sequence[Note], soundfont: str, sample_rate: int) -> np.ndarray:
    """``(len(notes), NOTE_S * sample_rate)`` float32 clips of one fluidsynth run."""
    mono = render_midi_mono(midi_bytes(notes), soundfont, sample_rate, f"{len(notes)} notes")
    slot, length = n_samples(SLOT_S, sample_rate), n_samples(NOTE_S, sample_rate)
    mono = np.pad(mono, (0, max(0, len(notes) * slot - mono.shape[0])))
    out = np.empty((len(notes), length), dtype=np.float32)
    for i, note in enumerate(notes):
        x = mono[i * slot : i * slot + length]
        peak = float(np.max(np.abs(x)))
        if peak < 1e-4:
            raise TaskDataError(
                f"{Path(soundfont).name}: program {note.program} pitch {note.pitch} rendered "
                f"silence (peak {peak:.1e}); expected a note. The soundfont may lack this range"
            )
        out[i] = x * (PEAK / peak)
    return out


class SoundfontTask(TaskBuilder):
    """Shared rendering of the soundfont tasks; subclasses implement :meth:`plan`."""

    def check_data(self, data_dir: Path) -> None:
        check_renderer()

    def render(
        self, clips: Sequence[Clip], data_dir: Path, sample_rate: int
    ) -> Iterator[tuple[Clip, np.ndarray]]:
        groups: dict[tuple[str, tuple[Note, ...]], list[Clip]] = {}
        for clip in clips:
            groups.setdefault((clip.recipe.soundfont, clip.recipe.batch), []).append(clip)
        for (soundfont, batch), members in groups.items():
            audio = render_batch(batch, soundfont, sample_rate)
            for clip in members:
                yield clip, audio[clip.recipe.slot]
