"""``localisation_foa``: azimuth sector (8 classes) of an ESC-50 source in a simulated room,
recorded as first-order ambisonics (4 channels, ACN order W, Y, Z, X, SN3D). Planning and rendering:
:mod:`echoic.tasks.spatial_scenes`; the room and FOA model: :mod:`echoic.data.spatial`. The true
azimuth of every clip is in ``spatial.csv``.
"""

from __future__ import annotations

from echoic.tasks.base import TASKS, TaskInfo
from echoic.tasks.spatial_scenes import LocalisationTask

CLIPS = {
    "full": {"train": 384, "valid": 128, "test": 128},
    "small": {"train": 8, "valid": 8, "test": 8},
}


@TASKS.register("localisation_foa")
class LocalisationFOATask(LocalisationTask):
    """640 four-channel clips of 2 s; 160 rooms of RT60 0.2-0.8 s, 4 clips each."""

    info = TaskInfo(
        name="localisation_foa",
        version="v1.0.0",
        embedding_type="scene",
        prediction_type="multiclass",
        split_mode="trainvaltest",
        sample_duration=2.0,
        evaluation=("top1_acc", "azimuth_mae_deg"),
        source="ESC-50 clips (K. J. Piczak, 2015) in pyroomacoustics shoebox rooms, FOA",
        licence="CC BY-NC 3.0 (non-commercial), as ESC-50",
        channels=4,
        channel_layout="first-order ambisonics, ACN order, SN3D: W, Y, Z, X",
    )
    fmt = "foa"
    seed = 20202
    source_s = 2.0
    clip_counts = CLIPS
