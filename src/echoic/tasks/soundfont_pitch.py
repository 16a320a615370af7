"""``soundfont_pitch``: MIDI pitch (36-84) of single notes, FluidR3_GM → TimGM6mb."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from echoic.tasks.base import TASKS, TRAIN_VALID_TEST, Clip, TaskInfo
from echoic.tasks.soundfont import (
    NOTE_S,
    SOUNDFONT_OF_SPLIT,
    VELOCITY_RANGE,
    Note,
    SoundfontTask,
    note_name,
    programs_of_split,
    with_recipes,
)

PITCHES = tuple(range(36, 85))  # C2 .. C6
SMALL_PITCHES = (48, 55, 60, 67)
NOTES_PER_PITCH = {"train": 8, "valid": 2, "test": 3}
SEED = 6060


@TASKS.register("soundfont_pitch")
class SoundfontPitchTask(SoundfontTask):
    """49 pitch classes (MIDI 36-84, labels are the MIDI numbers as text, as in HEAR's
    nsynth_pitch, so chroma accuracy can be computed from them). Per pitch: train 8 and valid 2
    notes (FluidR3_GM; train and valid use disjoint programs), test 3 notes (TimGM6mb, all
    programs); each note's program is drawn among those whose range holds the pitch. GM drawbar
    and percussive organ are left out: their registration sounds an octave below the note."""

    info = TaskInfo(
        name="soundfont_pitch",
        version="v1.0.0",
        embedding_type="scene",
        prediction_type="multiclass",
        split_mode="trainvaltest",
        sample_duration=NOTE_S,
        evaluation=("pitch_acc", "chroma_acc"),
        source="notes rendered with fluidsynth from FluidR3_GM (train/valid) and "
        "TimGM6mb (test), Debian packages",
        licence="MIT (FluidR3_GM: train, valid), GPL-2 (TimGM6mb: test)",
    )

    def vocabulary(self, clips: Sequence[Clip]) -> list[str]:
        return sorted({c.labels[0] for c in clips}, key=int)

    def plan(self, data_dir: Path, mode: str) -> list[Clip]:
        pitches = SMALL_PITCHES if mode == "small" else PITCHES
        planned = []
        for split_index, split in enumerate(TRAIN_VALID_TEST):
            rng = np.random.default_rng(SEED + split_index)
            programs = [p for p in programs_of_split(split) if not p.sub_octave]
            count = 1 if mode == "small" else NOTES_PER_PITCH[split]
            index = 0
            for pitch in pitches:
                fits = [p for p in programs if p.low <= pitch <= p.high]
                for _ in range(count):
                    program = fits[int(rng.integers(len(fits)))]
                    velocity = int(rng.integers(VELOCITY_RANGE[0], VELOCITY_RANGE[1] + 1))
                    note = Note(program.number, pitch, velocity)
                    font = SOUNDFONT_OF_SPLIT[split].name
                    clip = Clip(
                        split,
                        note_name(split, index, note),
                        (str(pitch),),
                        sources=(f"{font}#program{program.number}",),
                        group=f"{font}#program{program.number}",
                    )
                    planned.append((split, note, clip))
                    index += 1
        return with_recipes(planned)
