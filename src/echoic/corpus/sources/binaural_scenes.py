"""``binaural_scenes`` (and ``foa_scenes``): real dry clips placed in simulated rooms and heard
through one dummy head (or a first-order ambisonic microphone).

GRAM-style spatial pretraining data: each item is a 3 s, 16 kHz, 2-channel (left, right) scene.
Scene ``i`` draws, from one generator seeded by ``(ctx.seed, 7301, i)``, a shoebox room (RT60
0.2-0.8 s, :func:`echoic.data.spatial.sample_room`), a listener and a source direction (azimuth
uniform over 360 degrees, :func:`~echoic.data.spatial.sample_placement`), one dry source among
:attr:`BinauralScenes.dry_sources` that can run here, and clips of that source (used in place),
concatenated with gaps of 0.05-0.3 s until the 3 s are filled (the last one cropped). The mono
mix is rendered with :func:`~echoic.data.spatial.room_impulse_response` (the tail seeded per
scene) and :func:`~echoic.data.spatial.spatialise`, cut to 3 s and scaled to -25 dBFS RMS over
both channels (one gain: interaural level differences kept), as the spatial tasks do. A resumed
build plans the same scene ``i`` (given the same dry sources can run) and renders only the
missing files.

Heads: only the MIT KEMAR HRTF, the head of the spatial tasks' *train* split
(:data:`echoic.tasks.spatial_scenes.HRTF_OF_SPLIT`); the two SONICOM heads of their valid and
test splits are never in pretraining data, so those splits still measure generalisation to an
unseen head. The dry clips come from pretraining-only sets and task train splits, never ESC-50.

``foa_scenes``: the same scenes (other seeds) as 4-channel first-order ambisonics (ACN / SN3D, W Y
Z X: :func:`echoic.data.spatial.foa_gains`, the format of ``localisation_foa``), no head involved.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import ClassVar

import numpy as np

from echoic.corpus.base import SOURCES, CorpusContext, CorpusError, CorpusItem, CorpusSource
from echoic.data.audio import audio_info, load_audio
from echoic.data.hrtf import SpatialDependencyError, load_hrtf
from echoic.data.spatial import (
    Placement,
    Room,
    import_pyroomacoustics,
    room_impulse_response,
    sample_placement,
    sample_room,
    spatialise,
)

DATASET = "binaural_scenes"
RATE = 16000
SCENE_S = 3.0
SEED_TAG = 7301
HRTF = "mit_kemar"
RT60_RANGE_S = (0.2, 0.8)
GAP_S = (0.05, 0.3)
TARGET_RMS_DB = -25.0
SILENT_RMS = 1e-6
SAMPLES = round(SCENE_S * RATE)
DRY_CATEGORY = {
    "gcompris_voices": "speech",
    "arabic_speech_commands_train": "speech",
    "soundfont_train": "music",
}
"""Category of a dry source's clips (an item's own category wins)."""


@dataclass(frozen=True)
class DryClip:
    """A dry clip of a scene: its first ``length`` samples start at sample ``start``."""

    source: str
    item: CorpusItem
    start: int
    length: int


@dataclass(frozen=True)
class ScenePlan:
    """Everything that decides scene ``index``'s audio."""

    index: int
    fmt: str  # "binaural" | "foa"
    hrtf: str  # the HRTF set of a binaural scene; "" for FOA
    room: Room
    placement: Placement
    clips: tuple[DryClip, ...]
    seed: tuple[int, ...]


@SOURCES.register(DATASET)
class BinauralScenes(CorpusSource):
    """:attr:`scenes` binaural scenes (3,000 = 2.5 h) from the clips of :attr:`dry_sources`."""

    name = DATASET
    licence = (
        "per file (licences.csv): the licence of its dry clips' source (gcompris_voices mostly "
        "GPL; arabic_speech_commands_train CC BY 4.0; soundfont_train MIT); MIT KEMAR HRTF "
        "(Gardner & Martin 1994), free with attribution"
    )
    description = (
        "real speech and music clips in simulated shoebox rooms (RT60 0.2-0.8 s, any azimuth), "
        "binaural through the MIT KEMAR head only, 3 s scenes"
    )
    scenes: ClassVar[int] = 3000
    fmt: ClassVar[str] = "binaural"
    hrtf: ClassVar[str] = HRTF
    seed_tag: ClassVar[int] = SEED_TAG
    dry_sources: ClassVar[tuple[str, ...]] = (
        "gcompris_voices",
        "arabic_speech_commands_train",
        "soundfont_train",
    )

    def _dry(self, ctx: CorpusContext) -> dict[str, str | None]:
        """Each dry source → None when it can run here, else why not."""
        return {name: SOURCES.get(name)().unavailable(ctx) for name in self.dry_sources}

    def unavailable(self, ctx: CorpusContext) -> str | None:
        dry = self._dry(ctx)
        if all(dry.values()):
            reasons = "; ".join(f"{name}: {why}" for name, why in dry.items())
            return f"none of its dry sources can run here ({reasons})"
        try:
            if self.hrtf:
                load_hrtf(self.hrtf, RATE)
            import_pyroomacoustics()
        except SpatialDependencyError as err:
            return " ".join(str(err).split())
        return None

    def count(self, ctx: CorpusContext) -> int:
        """How many scenes: :attr:`scenes`, fewer when ``ctx.max_hours`` holds fewer."""
        if not ctx.max_hours:  # as the builder: no cap
            return self.scenes
        return min(self.scenes, math.floor(ctx.max_hours * 3600 / SCENE_S + 1e-9))

    def items(self, ctx: CorpusContext) -> Iterator[CorpusItem]:
        ready = [name for name, why in self._dry(ctx).items() if not why]
        pools: dict[str, list[CorpusItem]] = {}
        for name in ready:
            listed = (i for i in SOURCES.get(name)().items(ctx) if i.path is not None)
            pools[name] = sorted(listed, key=lambda i: i.key)
        pools = {name: pool for name, pool in pools.items() if pool}
        if not pools:
            raise CorpusError(f"{DATASET}: the dry sources {ready} list no files")
        lengths: dict[Path, int] = {}
        for index in range(self.count(ctx)):
            plan = self.plan(ctx, index, pools, lengths)
            first = plan.clips[0]
            yield CorpusItem(
                key=f"scene{index:05d}",
                render=partial(render_scene, plan),
                origin=describe(plan),
                licence="; ".join(dict.fromkeys(SOURCES.get(c.source).licence for c in plan.clips)),
                category=first.item.category or DRY_CATEGORY.get(first.source, ""),
            )

    def plan(
        self,
        ctx: CorpusContext,
        index: int,
        pools: dict[str, list[CorpusItem]],
        lengths: dict[Path, int],
    ) -> ScenePlan:
        """Scene ``index``: room, placement, dry source and clips, all from its own generator."""
        seed = (ctx.seed, self.seed_tag, index)
        rng = np.random.default_rng(seed)
        room = sample_room(rng, RT60_RANGE_S)
        placement = sample_placement(rng, room, (0.0, 360.0))
        names = sorted(pools)
        source = names[int(rng.integers(len(names)))]
        pool = pools[source]
        clips: list[DryClip] = []
        t = 0
        while t < SAMPLES:
            item = pool[int(rng.integers(len(pool)))]
            assert item.path is not None
            if item.path not in lengths:
                lengths[item.path] = clip_length(item.path)
            length = min(lengths[item.path], SAMPLES - t)
            clips.append(DryClip(source, item, t, length))
            t += length + round(float(rng.uniform(*GAP_S)) * RATE)
        return ScenePlan(index, self.fmt, self.hrtf, room, placement, tuple(clips), seed)


def clip_length(path: Path) -> int:
    """Length of ``path`` in samples at :data:`RATE` (from its header when it has one)."""
    info = audio_info(path)
    if info.frames >= 0:
        return round(info.frames * RATE / info.sample_rate)
    return int(load_audio(path, RATE)[0].shape[0])


def describe(plan: ScenePlan) -> str:
    """The manifest origin of a scene: geometry, head and dry clips."""
    r, p = plan.room, plan.placement
    x, y, z = r.size_m
    dry = " + ".join(f"{c.item.origin or c.item.path}@{c.start / RATE:.3f}s" for c in plan.clips)
    return (
        f"{DATASET}: room {x}x{y}x{z} m RT60 {r.rt60_s} s; azimuth {p.azimuth_deg} deg "
        f"elevation {p.elevation_deg} deg distance {p.distance_m} m yaw {p.yaw_deg} deg; "
        f"{f'HRTF {plan.hrtf}' if plan.hrtf else plan.fmt.upper()}; dry {dry}"
    )


def render_scene(plan: ScenePlan) -> tuple[np.ndarray, int]:
    """``((C, S) float32 audio at -25 dBFS RMS, 16000)`` of a planned scene: left / right
    (binaural) or W, Y, Z, X (FOA)."""
    dry = np.zeros(SAMPLES)
    for c in plan.clips:
        assert c.item.path is not None
        x = load_audio(c.item.path, RATE, duration_s=c.length / RATE)[0][: c.length]
        dry[c.start : c.start + x.shape[0]] = x
    hrtf = load_hrtf(plan.hrtf, RATE) if plan.hrtf else None
    rir = room_impulse_response(
        plan.room, plan.placement, plan.fmt, RATE, hrtf, np.random.SeedSequence(plan.seed)
    )
    y = spatialise(dry, rir)  # the first 3 s: the last clip's reverberation is cut
    rms = float(np.sqrt(np.mean(y**2)))
    if not rms > SILENT_RMS:
        raise CorpusError(
            f"scene {plan.index}: rendered silence (RMS {rms:.2g}); expected sound from "
            f"{', '.join(str(c.item.path) for c in plan.clips)}"
        )
    return (y * (10.0 ** (TARGET_RMS_DB / 20.0) / rms)).astype(np.float32), RATE


@SOURCES.register("foa_scenes")
class FoaScenes(BinauralScenes):
    """:attr:`scenes` first-order ambisonic scenes (4 channels, W Y Z X; 3,000 = 2.5 h)."""

    name = "foa_scenes"
    licence = (
        "per file (licences.csv): the licence of its dry clips' source (gcompris_voices mostly "
        "GPL; arabic_speech_commands_train CC BY 4.0; soundfont_train MIT)"
    )
    description = (
        "real speech and music clips in simulated shoebox rooms (RT60 0.2-0.8 s, any azimuth), "
        "first-order ambisonics (ACN / SN3D), 3 s scenes"
    )
    fmt = "foa"
    hrtf = ""
    seed_tag = SEED_TAG + 1
