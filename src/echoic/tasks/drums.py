"""``drums``: drum one-shot instrument class (kick/snare/hihat/tom/cymbal), folds by kit."""

from __future__ import annotations

from echoic.tasks.base import TASKS, FileTask, TaskInfo, fold_name

# The three Millo kits are one Ludwig set recorded three times: they form one group (README).
KIT_GROUPS = (
    ("BJA_Pacific",),
    ("ColomboAcousticDrumkit",),
    ("ForzeeStereo",),
    ("Millo-Drums_v.1", "Millo_MultiLayered2", "Millo_MultiLayered3"),
    ("The Black Pearl 1.0",),
    ("rumpf_kit_z01_h2",),
)
_FOLD_OF_KIT = {kit: fold_name(i) for i, group in enumerate(KIT_GROUPS) for kit in group}


@TASKS.register("drums")
class DrumsTask(FileTask):
    """411 hits of 8 recorded Hydrogen kits in 6 kit groups → 6 folds (leave one kit out).
    Sources decode at 48 kHz (32 kHz content); clips are cropped/zero-padded at the end to 2 s,
    which keeps every onset but cuts long cymbal ring-outs."""

    info = TaskInfo(
        name="drums",
        version="v1.0.0",
        embedding_type="scene",
        prediction_type="multiclass",
        split_mode="new_split_kfold",
        nfolds=len(KIT_GROUPS),
        sample_duration=2.0,
        evaluation=("top1_acc", "mAP"),
        source="Debian hydrogen-drumkits 2017.09.19 (8 recorded kits)",
        licence="per kit: GPL-2.0 / GPL-2.0-or-later, CC BY 3.0, CC BY-SA 3.0 US",
    )
    datasets = ("drums",)
    label_column = "instrument"
    small_labels = 5

    def split_of(self, row: dict[str, str]) -> str:
        return _FOLD_OF_KIT[row["kit"]]

    def group_of(self, row: dict[str, str]) -> str:
        return "kit:" + _FOLD_OF_KIT[row["kit"]]
