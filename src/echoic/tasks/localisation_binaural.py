"""``localisation_binaural``: azimuth sector (8 classes) of an ESC-50 source heard binaurally in a
simulated room, through a head the split does not share (train: MIT KEMAR; valid, test: two
SONICOM human listeners). Planning and rendering: :mod:`echoic.tasks.spatial_scenes`; the room
and HRTF model: :mod:`echoic.data.spatial`. The true azimuth of every clip is in ``spatial.csv``.
"""

from __future__ import annotations

from echoic.tasks.base import TASKS, TaskInfo
from echoic.tasks.spatial_scenes import BINAURAL_LICENCE, BINAURAL_SOURCE, LocalisationTask

CLIPS = {
    "full": {"train": 384, "valid": 128, "test": 128},
    "small": {"train": 8, "valid": 8, "test": 8},
}


@TASKS.register("localisation_binaural")
class LocalisationBinauralTask(LocalisationTask):
    """640 two-channel (left, right) clips of 2 s; 160 rooms of RT60 0.2-0.8 s, 4 clips each."""

    info = TaskInfo(
        name="localisation_binaural",
        version="v1.0.0",
        embedding_type="scene",
        prediction_type="multiclass",
        split_mode="trainvaltest",
        sample_duration=2.0,
        evaluation=("top1_acc", "azimuth_mae_deg"),
        source=BINAURAL_SOURCE,
        licence=BINAURAL_LICENCE,
        channels=2,
        channel_layout="binaural: left, right",
    )
    fmt = "binaural"
    seed = 20201
    source_s = 2.0
    clip_counts = CLIPS
