"""Train splits of fixed-split evaluation tasks (their valid and test splits stay held out).

The task is built (or resumed) with ``echoic tasks build`` into the context's tasks folder, then
its 16 kHz train wavs are used in place; each item's origin is its shared source file (or render
recipe) from the task's ``sources.csv``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from echoic.corpus.base import SOURCES, CorpusContext, CorpusError, CorpusItem, CorpusSource
from echoic.tasks.writer import build_tasks

RATE = 16000


class TaskTrainSource(CorpusSource):
    """The ``train`` split of :attr:`task` (a ``trainvaltest`` task)."""

    task: ClassVar[str]

    def unavailable(self, ctx: CorpusContext) -> str | None:
        if ctx.tasks_dir is None:
            return "needs a tasks folder (--tasks-dir DIR) to build or find the task in"
        return None

    def _task_dir(self, ctx: CorpusContext) -> Path:
        assert ctx.tasks_dir is not None
        built = sorted(ctx.tasks_dir.glob(f"{self.task}-*-full/task_metadata.json"))
        if built:
            return built[-1].parent
        (result,) = build_tasks([self.task], ctx.tasks_dir, ctx.data_dir, RATE, "full", False)
        return result.directory

    def items(self, ctx: CorpusContext) -> Iterator[CorpusItem]:
        task = self._task_dir(ctx)
        meta = json.loads((task / "task_metadata.json").read_text())
        if meta.get("split_mode") != "trainvaltest":
            raise CorpusError(
                f"{task}: split mode {meta.get('split_mode')!r}; only the train split of a "
                f"trainvaltest task may enter a pretraining corpus"
            )
        origins: dict[str, str] = {}
        with open(task / "sources.csv", newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if row["split"] == "train":
                    origins[row["file"]] = row["sources"]
        folder = task / str(RATE) / "train"
        if not folder.is_dir():
            raise CorpusError(f"{folder} not found; expected the task built at {RATE} Hz")
        for wav in sorted(folder.glob("*.wav")):
            yield CorpusItem(key=wav.name, path=wav, origin=origins.get(wav.name, ""))


@SOURCES.register("arabic_speech_commands_train")
class ArabicSpeechCommandsTrain(TaskTrainSource):
    task = "arabic_speech_commands"
    name = "arabic_speech_commands_train"
    licence = "CC BY 4.0"
    description = "Arabic speech commands, train speakers only (7,200 one-second keywords)"


@SOURCES.register("soundfont_train")
class SoundfontTrain(TaskTrainSource):
    task = "soundfont_instrument"
    name = "soundfont_train"
    licence = "MIT (FluidR3_GM soundfont, Debian fluid-soundfont-gm)"
    description = "single GM notes rendered from FluidR3 (the soundfont_instrument train split)"
