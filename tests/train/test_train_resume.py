"""Resume exactness: stop after step k, resume to n; every loss k+1..n equals an uninterrupted run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
from lightning.pytorch.callbacks import Callback

import echoic.train.module as module_mod
from echoic.encoders import encoder_config
from echoic.errors import ConfigError
from echoic.objectives import OBJECTIVES
from echoic.train.config import load_config
from echoic.train.run import pretrain

STOP, TOTAL = 2, 4
TINY = {
    "mae": {"decoder_dim": 32, "decoder_depth": 1, "decoder_heads": 2},
    "mert": {"n_codebooks": 2, "codebook_size": 16, "final_dim": 16},
    "eat": {"clone_batch": 3, "decoder_dim": 32, "decoder_layers": 1, "ema_decay": 0.9},
    "ssast": {},
    "m2d": {"predictor_dim": 32, "predictor_depth": 1, "predictor_heads": 2, "ema_decay": 0.9},
    "byol_a": {"projector_hidden": 64, "projector_dim": 32},
    "data2vec2": {"clone_batch": 3, "decoder_dim": 32, "decoder_layers": 1, "ema_decay": 0.9},
    "wavjepa": {"predictor_dim": 32, "predictor_depth": 1, "predictor_heads": 2, "ema_decay": 0.9},
    "asit": {"head_hidden": 32, "head_bottleneck": 16, "out_dim": 64, "local_crops": 1},
    "beats": {"predictor_dim": 32, "predictor_depth": 1, "predictor_heads": 2, "codebook_size": 64},
    "hubert": {"final_dim": 32},
    "spear": {"n_codebooks": 2, "codebook_size": 16},
    "unfused": {"codebook_size": 16},
    "clap": {"text": "text_test", "dim": 16, "hidden": 32},
    "slap": {"text": "text_test", "dim": 16, "hidden": 32, "ema_decay": 0.9},
    "spatial_mae": {
        "decoder_dim": 32,
        "decoder_depth": 1,
        "decoder_heads": 2,
        "window_sizes": [2, 0],
    },
}
"""Small heads per objective; an objective not listed runs with its defaults."""


class StopAfter(Callback):
    """Simulates a run killed right after optimiser step ``k`` (a checkpoint exists at k)."""

    def __init__(self, k: int) -> None:
        self.k = k

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        if trainer.global_step >= self.k:
            trainer.should_stop = True


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("resume_audio")
    rng = np.random.default_rng(0)
    for i in range(6):
        n = int(16000 * (0.7 + 0.3 * i))
        t = np.arange(n) / 16000
        x = 0.3 * np.sin(2 * np.pi * (150 + 60 * i) * t) + 0.05 * rng.standard_normal(n)
        sf.write(root / f"clip{i}.wav", x.astype(np.float32), 16000)
    # a corpus's captions sidecar (echoic.data.captions) for the audio–text objectives
    (root / "manifest.csv").write_text(
        "file,source\n" + "".join(f"clip{i}.wav,tones\n" for i in range(6))
    )
    (root / "captions.csv").write_text(
        "file,source,split,group,caption,caption_lang,caption_kind\n"
        + "".join(
            f"clip{i}.wav,tones,train,g{i},a tone of {150 + 60 * i} hertz,en,generated\n"
            f"clip{i}.wav,tones,train,g{i},tone number {i},en,generated\n"
            for i in range(6)
        )
    )
    return root


def encoder_args(objective: str) -> list[str]:
    """``vit_test`` on Kaldi fbank, or ``wav_test`` on the waveform for the methods that refuse
    spectrogram patches (data2vec2, wavjepa)."""
    try:
        OBJECTIVES.get(objective).check_encoder(encoder_config("vit_test").spec())
    except ConfigError:
        return ["--model.encoder=wav_test", "--model.frontend=waveform"]
    return ["--model.encoder=vit_test"]


def recipe(audio: Path, out: Path, objective: str) -> list[str]:
    config = json.dumps(TINY.get(objective, {}))
    return [
        f"--output_dir={out}",
        *encoder_args(objective),
        f"--objective.name={objective}",
        f"--objective.config={config}",
        f"--data.train=[{audio}]",
        "--data.crop_s=0.6",
        "--data.batch_size=3",
        "--data.num_workers=0",
        "--optim.lr=1e-3",
        "--optim.warmup_steps=1",
        f"--trainer.max_steps={TOTAL}",
        f"--trainer.checkpoint_every_n_steps={STOP}",
        "--trainer.progress_bar=false",
        "--trainer.tensorboard=false",
        *(["--data.captions=true"] if OBJECTIVES.get(objective).needs_text else []),
    ]


def losses(out: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows}


def interrupted_then_resumed(audio: Path, out: Path, objective: str) -> dict[int, float]:
    args = recipe(audio, out, objective)
    pretrain(load_config(None, args), callbacks=[StopAfter(STOP)], export=False)
    assert sorted(losses(out)) == list(range(1, STOP + 1))
    ckpt = out / "checkpoints" / f"step={STOP:08d}.ckpt"
    pretrain(load_config(None, args), resume=str(ckpt), export=False)
    return losses(out)


@pytest.mark.parametrize("objective", OBJECTIVES.names())
def test_resumed_losses_equal_an_uninterrupted_run(
    audio: Path, tmp_path: Path, objective: str
) -> None:
    torch.set_num_threads(1)
    straight = tmp_path / "straight"
    pretrain(load_config(None, recipe(audio, straight, objective)), export=False)
    expected = losses(straight)
    resumed = interrupted_then_resumed(audio, tmp_path / "resumed", objective)
    assert sorted(resumed) == sorted(expected) == list(range(1, TOTAL + 1))
    diffs = [abs(resumed[s] - expected[s]) for s in range(STOP + 1, TOTAL + 1)]
    assert max(diffs) <= 1e-6, diffs
    ckpt = torch.load(
        tmp_path / "resumed" / "checkpoints" / f"step={STOP:08d}.ckpt", weights_only=True
    )
    state = ckpt["echoic"]
    assert state["batches_seen"] == STOP and state["data_hash"].startswith("sha256:")
    assert set(state["rng"][0]) >= {"python", "numpy", "torch", "generator"}


def test_without_the_saved_rng_state_resuming_is_not_exact(
    audio: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control: the test above can fail — restoring the RNG states is what makes it pass."""
    torch.set_num_threads(1)
    straight = tmp_path / "straight"
    pretrain(load_config(None, recipe(audio, straight, "eat")), export=False)
    monkeypatch.setattr(module_mod, "restore_rng", lambda state, generator=None: None)
    resumed = interrupted_then_resumed(audio, tmp_path / "resumed", "eat")
    expected = losses(straight)
    assert max(abs(resumed[s] - expected[s]) for s in range(STOP + 1, TOTAL + 1)) > 1e-4
