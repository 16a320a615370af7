"""Token quality of a tokenizer on a labelled HEAR task (``echoic tokenizer metrics``).

Every clip of every split of a multiclass scene task is tokenized (frames from the tokenizer's
source model, :mod:`echoic.embed.token_frames`); its first label is the clip's label. Scores:
frame-level NMI / purity and clip-level bag-of-tokens NMI / purity
(:mod:`echoic.tokenizers.metrics`). A supervised probe of the same tokens is ``echoic eval
--model TOKENIZER_DIR`` (the ``bag_of_tokens`` model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from echoic.data.audio import load_audio
from echoic.embed.token_frames import FrameSource
from echoic.embed.tokenize import tokenize_clips
from echoic.evaluate.task import TaskFormatError, load_task
from echoic.tokenizers.base import Tokenizer
from echoic.tokenizers.metrics import bag_scores, clip_histograms, frame_scores

__all__ = ["task_clips", "token_quality"]


def task_clips(task_dir: str | Path) -> tuple[str, list[tuple[Path, int]]]:
    """(task name, ``(audio path, label index)`` of every clip), from the task's lowest rate."""
    task = load_task(task_dir)
    if task.is_event or task.prediction_type != "multiclass":
        raise TaskFormatError(
            f"{task.path}: token metrics need a multiclass scene task (one label per clip); "
            f"found {task.embedding_type} / {task.prediction_type}."
        )
    rate = task.sample_rates()[0]
    clips = []
    for split, files in task.splits.items():
        for name, labels in files.items():
            clips.append((task.audio_path(rate, split, name), task.label_ids(labels)[0]))
    return task.name, clips


def token_quality(
    task_dir: str | Path,
    source: FrameSource,
    tokenizer: Tokenizer,
    seed: int = 0,
    files_per_batch: int = 16,
) -> dict[str, Any]:
    """Frame-level and bag-of-tokens NMI / purity of ``tokenizer`` on the task's clips."""
    name, clips = task_clips(task_dir)
    ids: list[np.ndarray] = []
    for start in range(0, len(clips), files_per_batch):
        group = clips[start : start + files_per_batch]
        waves = [load_audio(path, sample_rate=source.sample_rate)[0] for path, _ in group]
        ids += [clip_ids for clip_ids, _ in tokenize_clips(source, tokenizer, waves)]
    labels = [label for _, label in clips]
    frames = frame_scores(ids, labels, seed)
    bags = bag_scores(clip_histograms(ids, tokenizer.codebook_sizes), labels, seed)
    return {
        "task": name,
        "clips": len(clips),
        "labels": len(set(labels)),
        "frames": int(frames["frames"]),
        "frame_nmi": frames["nmi"],
        "frame_nmi_shuffled": frames["nmi_shuffled"],
        "frame_purity": frames["purity"],
        "frame_nmi_mean_codebooks": frames["nmi_mean"],
        "bag_nmi": bags["nmi"],
        "bag_purity": bags["purity"],
    }
