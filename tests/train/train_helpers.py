"""A folder of noise clips and a tiny MAE run config, shared by the quick training tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from echoic.train.config import PretrainConfig, load_config


def noise_clips(folder: Path, count: int, samples: int, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        audio = (0.1 * rng.standard_normal(samples)).astype(np.float32)
        sf.write(folder / f"c{i}.wav", audio, 16000)
    return folder


def tiny_mae_config(out: Path, audio: Path, **overrides: Any) -> PretrainConfig:
    """vit_test + a one-block MAE decoder on 0.5-s crops, batch 2, no workers, no progress bar."""
    values: dict[str, Any] = {
        "output_dir": str(out),
        "model.encoder": "vit_test",
        "objective.name": "mae",
        "objective.config": {"decoder_dim": 32, "decoder_depth": 1, "decoder_heads": 2},
        "data.train": [str(audio)],
        "data.crop_s": 0.5,
        "data.batch_size": 2,
        "data.num_workers": 0,
        "trainer.progress_bar": False,
        "trainer.log_every_n_steps": 1,
    }
    values.update({k.replace("__", "."): v for k, v in overrides.items()})
    return load_config(None, values)
