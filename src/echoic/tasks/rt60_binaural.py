"""``rt60_binaural``: reverberation time class (3 classes) of a simulated room, heard binaurally.

The issue's ``distance_or_rt60`` task, RT60 chosen: distance cues (level, direct-to-reverberant
ratio) are confounded with the source's own level and the per-clip loudness normalisation, while
RT60 is a property of the room that a clip's decays show. Classes are bins of the RT60 the room's
absorption is computed for (Sabine), measured RT60 of the rendered responses within a few per cent
of it (tests/data/test_spatial.py): ``rt60_0.2-0.4s``, ``rt60_0.4-0.7s``, ``rt60_0.7-1.2s``; a
room's RT60 is drawn uniformly inside its bin shrunk by 5 % at each edge. Room ``r`` of a split is
in class ``r mod 3`` (balanced); its 4 clips have random listeners and source directions (any
azimuth). Clips hold 1.5 s of source then 0.5 s of free decay (2 s). Planning and rendering:
:mod:`echoic.tasks.spatial_scenes`, HRTFs per split as in ``localisation_binaural``.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from echoic.data.spatial import Placement, Room, sample_placement, sample_room
from echoic.tasks.base import TASKS, Clip, TaskInfo
from echoic.tasks.spatial_scenes import BINAURAL_LICENCE, BINAURAL_SOURCE, SpatialTask

RT60_EDGES_S = (0.2, 0.4, 0.7, 1.2)
RT60_LABELS = tuple(f"rt60_{lo:.1f}-{hi:.1f}s" for lo, hi in pairwise(RT60_EDGES_S))
EDGE_MARGIN = 1.05
CLIPS = {
    "full": {"train": 384, "valid": 128, "test": 128},
    "small": {"train": 12, "valid": 12, "test": 12},
}


@TASKS.register("rt60_binaural")
class RT60BinauralTask(SpatialTask):
    """640 two-channel clips of 2 s in 160 rooms (4 clips per room), 3 RT60 classes."""

    info = TaskInfo(
        name="rt60_binaural",
        version="v1.0.0",
        embedding_type="scene",
        prediction_type="multiclass",
        split_mode="trainvaltest",
        sample_duration=2.0,
        evaluation=("top1_acc", "mAP"),
        source=BINAURAL_SOURCE,
        licence=BINAURAL_LICENCE,
        channels=2,
        channel_layout="binaural: left, right",
    )
    fmt = "binaural"
    seed = 20203
    source_s = 1.5
    clip_counts = CLIPS

    def vocabulary(self, clips: Sequence[Clip]) -> list[str]:
        return list(RT60_LABELS)

    def draw_room(self, rng: np.random.Generator, room_index: int) -> tuple[Room, str]:
        k = room_index % len(RT60_LABELS)
        lo, hi = RT60_EDGES_S[k] * EDGE_MARGIN, RT60_EDGES_S[k + 1] / EDGE_MARGIN
        return sample_room(rng, (lo, hi)), RT60_LABELS[k]

    def draw_placement(
        self, rng: np.random.Generator, room: Room, clip_index: int, room_label: str
    ) -> tuple[Placement, str]:
        return sample_placement(rng, room), room_label
