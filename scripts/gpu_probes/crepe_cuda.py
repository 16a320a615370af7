"""`echoic eval` with the torchcrepe peers' network on a CUDA GPU (a GPU-host helper).

torchcrepe_full embeds at ~0.8 audio-seconds per second on one CPU thread, so its large tasks are
embedded on a GPU host. echoic's zoo adapters embed on the CPU; this wrapper moves the CREPE network
to CUDA (TF32 off, so the convolutions stay fp32) and feeds each batch of windows through it there.
Framing, normalisation and everything else are the adapter's own code, and the cache identity (model,
config, torchcrepe version, weights digest) is unchanged: the embeddings equal the CPU ones up to
float rounding (``--check`` prints the largest difference on a clip).

    python scripts/gpu_probes/crepe_cuda.py --check torchcrepe_full
    python scripts/gpu_probes/crepe_cuda.py eval --model torchcrepe_full --tasks ... --device cuda
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import torch

from echoic.cli.main import main
from echoic.zoo import peer_torchcrepe


def _patch() -> None:
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    build = peer_torchcrepe.TorchCrepeModel.__init__

    def init(self: peer_torchcrepe.TorchCrepeModel, *args: Any, **kwargs: Any) -> None:
        build(self, *args, **kwargs)
        self.model.to("cuda")
        inner = self.model.embed
        self.model.embed = lambda x: inner(x.to("cuda")).cpu()  # type: ignore[method-assign]

    peer_torchcrepe.TorchCrepeModel.__init__ = init  # type: ignore[method-assign]


def check(capacity: str) -> None:
    """Embed 3 s of noise and a tone on the CPU and on CUDA; print the largest differences."""
    rng = np.random.default_rng(0)
    t = np.arange(48000) / 16000
    clip = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(48000)).astype(
        np.float32
    )
    with torch.inference_mode():  # as ZooModel runs native()
        cpu = peer_torchcrepe.TorchCrepeModel(capacity=capacity).native([clip])[0]
        _patch()
        gpu = peer_torchcrepe.TorchCrepeModel(capacity=capacity).native([clip])[0]
    a, b = cpu.frames.numpy(), gpu.frames.numpy()
    print(
        f"crepe {capacity} cpu vs cuda: frames {a.shape}, max |diff| {np.abs(a - b).max():.3g}, "
        f"max |value| {np.abs(a).max():.3g}, timestamps equal {bool((cpu.times_ms == gpu.times_ms).all())}"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--check"]:
        check(sys.argv[2].removeprefix("torchcrepe_"))
    else:
        _patch()
        sys.exit(main(sys.argv[1:]))
