"""Two real CPU processes (torchrun, gloo): after a few DDP steps every rank holds the same weights."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

WORKER = Path(__file__).resolve().parent / "ddp_worker.py"
STEPS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_gloo_ranks_end_with_identical_parameters(tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    audio.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        sf.write(
            audio / f"c{i}.wav",
            (0.1 * rng.standard_normal(12000 + 800 * i)).astype(np.float32),
            16000,
        )
    eat = json.dumps({"clone_batch": 2, "decoder_dim": 32, "decoder_layers": 1, "ema_decay": 0.9})
    cmd = [
        sys.executable, "-m", "torch.distributed.run",
        "--nproc_per_node=2", f"--master_port={free_port()}",
        str(WORKER), "none", str(tmp_path),
        f"--output_dir={tmp_path / 'run'}",
        "--model.encoder=vit_test",
        "--objective.name=eat", f"--objective.config={eat}",
        f"--data.train=[{audio}]", "--data.crop_s=0.5", "--data.batch_size=2",
        "--data.num_workers=0",
        "--optim.lr=1e-3", "--optim.warmup_steps=1",
        f"--trainer.max_steps={STEPS}", "--trainer.accelerator=cpu", "--trainer.devices=2",
        "--trainer.strategy=ddp", "--trainer.progress_bar=false", "--trainer.tensorboard=false",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert [r["global_step"] for r in ranks] == [STEPS, STEPS]
    # the ranks trained on different clips ...
    assert not torch.equal(ranks[0]["first_batch"], ranks[1]["first_batch"])
    # ... yet hold identical students, heads and EMA teachers
    a, b = ranks[0]["state"], ranks[1]["state"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # and training moved them away from the initialisation
    assert int(a["num_updates"]) == STEPS
    assert not torch.equal(a["encoder.blocks.0.attn.qkv.weight"], a["ema.blocks.0.attn.qkv.weight"])
