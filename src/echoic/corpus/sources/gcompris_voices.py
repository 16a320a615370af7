"""``gcompris_voices``: the shared set marked pretraining-only (no evaluation task reads it)."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from echoic.corpus.base import SOURCES, CorpusContext, CorpusItem, CorpusSource

DATASET = "gcompris_voices"


@SOURCES.register(DATASET)
class GcomprisVoices(CorpusSource):
    """Every file of ``shared/data/gcompris_voices`` (8,233 short words and letters, 43 languages)."""

    name = DATASET
    licence = (
        "mostly GPL, some CC BY-SA, some public domain (per speaker: meta.csv speaker_licence)"
    )
    description = (
        "GCompris educational voices: letters, numbers, words in 43 languages (real speech)"
    )

    def unavailable(self, ctx: CorpusContext) -> str | None:
        meta = ctx.data_dir / DATASET / "meta.csv"
        if not meta.is_file():
            return f"{meta} not found; expected the shared data folder (--data DIR or $ECHOIC_DATA)"
        return None

    def items(self, ctx: CorpusContext) -> Iterator[CorpusItem]:
        folder = ctx.data_dir / DATASET
        with open(folder / "meta.csv", newline="", encoding="utf-8") as fh:
            files = sorted(row["file"] for row in csv.DictReader(fh))
        for rel in files:
            yield CorpusItem(key=rel, path=folder / rel, origin=f"{DATASET}/{rel}")
