"""``soundfont_instrument``: instrument family of single notes, FluidR3_GM → TimGM6mb."""

from __future__ import annotations

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

NOTES_PER_PROGRAM = {"train": 12, "valid": 12, "test": 5}
SMALL_FAMILIES = ("bass", "brass", "flute")
SEED = 5150


@TASKS.register("soundfont_instrument")
class SoundfontInstrumentTask(SoundfontTask):
    """11 NSynth instrument families x 4 GM programs. train: 33 programs x 12 notes and valid: the
    11 held-out programs x 12 notes, both rendered from FluidR3_GM; test: all 44 programs x 5 notes
    rendered from TimGM6mb. Pitch (uniform in the program's range) and velocity (40-127)
    are drawn with a fixed seed per split."""

    info = TaskInfo(
        name="soundfont_instrument",
        version="v1.0.0",
        embedding_type="scene",
        prediction_type="multiclass",
        split_mode="trainvaltest",
        sample_duration=NOTE_S,
        evaluation=("top1_acc", "mAP"),
        source="notes rendered with fluidsynth from FluidR3_GM (train/valid) and "
        "TimGM6mb (test), Debian packages",
        licence="MIT (FluidR3_GM: train, valid), GPL-2 (TimGM6mb: test)",
    )

    def plan(self, data_dir: Path, mode: str) -> list[Clip]:
        planned = []
        for split_index, split in enumerate(TRAIN_VALID_TEST):
            rng = np.random.default_rng(SEED + split_index)
            programs = programs_of_split(split)
            per_program = NOTES_PER_PROGRAM[split]
            if mode == "small":
                programs = [
                    next(p for p in programs if p.family == family) for family in SMALL_FAMILIES
                ]
                per_program = 1
            index = 0
            for program in programs:
                for _ in range(per_program):
                    pitch = int(rng.integers(program.low, program.high + 1))
                    velocity = int(rng.integers(VELOCITY_RANGE[0], VELOCITY_RANGE[1] + 1))
                    note = Note(program.number, pitch, velocity)
                    font = SOUNDFONT_OF_SPLIT[split].name
                    clip = Clip(
                        split,
                        note_name(split, index, note),
                        (program.family,),
                        sources=(f"{font}#program{program.number}",),
                        group=f"{font}#program{program.number}",
                    )
                    planned.append((split, note, clip))
                    index += 1
        return with_recipes(planned)
