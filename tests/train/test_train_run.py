"""One real run with the less common settings: gradient accumulation, several views, a worker
process, a corrupt file, TensorBoard; and what the run leaves on disk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import yaml

import echoic
from echoic.train.config import load_config
from echoic.train.run import pretrain


def test_accumulation_views_workers_and_a_corrupt_file(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    audio = tmp_path / "audio"
    audio.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        sf.write(
            audio / f"c{i}.wav",
            (0.1 * rng.standard_normal(9000 + 3000 * i)).astype(np.float32),
            16000,
        )
    (audio / "zz_broken.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage")
    out = tmp_path / "run"
    eat = {"clone_batch": 2, "decoder_dim": 32, "decoder_layers": 1}
    config = load_config(
        None,
        {
            "output_dir": str(out),
            "model.encoder": "vit_test",
            "objective.name": "eat",
            "objective.config": eat,
            "data.train": [str(audio)],
            "data.crop_s": 0.5,
            "data.views": 2,
            "data.batch_size": 2,
            "data.num_workers": 1,
            "trainer.max_steps": 2,
            "trainer.accumulate_grad_batches": 2,
            "trainer.gradient_clip_val": 1.0,
            "trainer.progress_bar": False,
            "trainer.log_every_n_steps": 1,
        },
    )
    result = pretrain(config)

    rows = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]  # one row per optimiser step
    assert result.module.batches_seen == 4  # 2 micro-batches per step
    assert int(result.module.objective.num_updates) == 2  # EMA once per optimiser step
    broken = str(audio / "zz_broken.wav")
    assert result.skipped_files == [broken] and rows[-1]["skipped_files"] == 1

    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["echoic"]["skipped_files"] == [broken]
    assert ckpt["echoic"]["data_hash"] == result.data_hash
    assert list((out / "tb").glob("events.out.tfevents.*"))
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["objective"]["config"]["mask_noise_std"] == 0.01  # defaults expanded
    assert resolved["model"]["encoder_config"]["dim"] == 32

    model = echoic.load(result.export_dir)
    assert model.config.data_hash == result.data_hash and model.config.step == 2
    assert model.config.provenance["origin"] == "echoic pretrain"
