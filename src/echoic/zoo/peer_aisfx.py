"""``aisfx``: the aiSFX sound-effects embedding network (Ma & Lerch, ISMIR 2022; a peer).

Licences: the PyPI package ``aisfx`` (0.1.2) is classified MIT; its bundled pre-trained model
(and paper) are CC BY 4.0 — attribution required (cite Ma & Lerch 2022).

The adapter runs the package's ``EmbeddingNet`` with its bundled weights
(``aisfx/models/checkpoint.pth``, model "X-Sequential-CE") on the package's own input pipeline,
following its librosa path (``aisfx.spectrogram.spectrogram_librosa``) but on waveforms instead of
files: audio at 44.1 kHz is peak-normalised, a 96-band HTK mel power spectrogram (2048-sample
frames every 1024 samples, centred, unit-sum filters) is compressed to ``log10(10⁴ x + 1)``,
laid out time × band, min-max normalised with the paper's constants
(``aisfx.preprocessing.spectrogram_normalize``), cut into blocks of 100 frames (≈ 2.3 s) every
``block_hop`` × 100 frames (``aisfx.preprocessing.blocking``; default 0.5 → 1.16 s, the paper's;
an incomplete last block is dropped, a clip shorter than one block gives one zero-padded block),
and each block gives a 512-d embedding (``CrossNet.get_embedding``), centred at
``(k · hop + 49.5) · 1024`` samples. Scene = mean of the blocks.

Two things the package does not do for arrays, so the adapter does: it lays the spectrogram out
time × band before blocking (the package's librosa path leaves it band × time, which its own
blocking would cut along the bands), and it loads the checkpoint with ``weights_only=True``
(allowing its two numpy globals) because torch ≥ 2.6 refuses the package's plain ``torch.load``.
The paper's features came from Essentia (AGPL), which the adapter does not use.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from echoic.config import from_dict, to_dict
from echoic.errors import ConfigError
from echoic.zoo.base import NativeFrames, ZooModel, file_digest
from echoic.zoo.cards.peer_aisfx import SAMPLE_RATE

BLOCK = 100  # spectrogram frames per embedding block
SPEC_HOP = 1024
SPEC_WINDOW = 2048
N_MELS = 96


def load_aisfx_weights() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The bundled checkpoint ``(state_dict, dataset dict)``, loaded without arbitrary pickles."""
    from aisfx.inference import get_path_modelWeights
    from numpy._core.multiarray import scalar

    allowed: list[Callable[..., Any] | tuple[Callable[..., Any], str]] = [
        (scalar, "numpy.core.multiarray.scalar"),
        np.dtype,
        np.dtypes.Int64DType,
        np.dtypes.Float64DType,
    ]
    with torch.serialization.safe_globals(allowed):
        weights, datasets = torch.load(
            get_path_modelWeights(), map_location="cpu", weights_only=True
        )
    return weights, datasets


def aisfx_spectrogram(clip: np.ndarray) -> np.ndarray:
    """``(S,)`` audio at 44.1 kHz → ``(T, 96)`` float log-mel as the package computes it."""
    import librosa

    peak = float(np.max(np.abs(clip))) if clip.size else 0.0
    y = clip / (peak if peak > 0 else 1.0)
    spec = librosa.feature.melspectrogram(
        y=y,
        sr=SAMPLE_RATE,
        n_mels=N_MELS,
        norm=1.0,
        fmin=0.0,
        fmax=SAMPLE_RATE / 2,
        htk=True,
        power=2.0,
        hop_length=SPEC_HOP,
        win_length=SPEC_WINDOW,
    )
    return np.log10(spec * 10000.0 + 1).T


@dataclass
class AisfxConfig:
    """Settings of :class:`AisfxModel`."""

    block_hop: float = 0.5  # fraction of a 100-frame block between blocks (the paper's 0.5)
    batch_size: int = 32  # blocks per forward pass

    def __post_init__(self) -> None:
        if not 0.01 <= self.block_hop <= 1.0:
            raise ConfigError(f"block_hop must be in [0.01, 1]; found {self.block_hop}")


class AisfxModel(ZooModel):
    """512-d sound-effects embeddings of 2.3 s blocks (see module docstring)."""

    name = "aisfx"
    label = "aisfx (peer: sound-effects CNN, weights CC BY 4.0)"
    sample_rate = SAMPLE_RATE
    embedding_size = 512
    min_samples = SPEC_WINDOW

    def __init__(
        self, config: AisfxConfig | None = None, device: str | torch.device = "cpu", **options: Any
    ) -> None:
        self.config = config or from_dict(AisfxConfig, options, where="aisfx")
        from aisfx.inference import get_path_modelWeights
        from aisfx.models.cnn2d import EmbeddingNet

        weights, _ = load_aisfx_weights()
        prefix = "embedding_net."
        state = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
        with torch.random.fork_rng(devices=[]):
            self.net = EmbeddingNet("max", 3, 1, 64)
        self.net.load_state_dict(state)
        self.net.eval()
        self.weights_path = get_path_modelWeights()
        self.hop = int(np.round(BLOCK * self.config.block_hop))
        self.frame_hop_ms = 1000.0 * self.hop * SPEC_HOP / SAMPLE_RATE
        self.to_device(device)

    def networks(self) -> list[torch.nn.Module]:
        return [self.net]

    def blocks(self, clip: np.ndarray) -> np.ndarray:
        """``(N, 100, 96)`` normalised spectrogram blocks of one clip."""
        from aisfx.preprocessing import blocking, spectrogram_normalize

        spec = spectrogram_normalize(aisfx_spectrogram(clip), spec_norm="original")
        return blocking(spec, block_size=BLOCK, hop_size=self.hop, drop_partial_block=True)

    def native(self, clips: list[np.ndarray]) -> list[NativeFrames]:
        blocks = [self.blocks(c) for c in clips]
        data = torch.Tensor(np.concatenate(blocks))
        size = self.config.batch_size
        out = torch.cat(
            [
                self.net(data[s : s + size].to(self.device)).cpu()
                for s in range(0, data.shape[0], size)
            ]
        )
        result = []
        for frames in out.split([b.shape[0] for b in blocks]):
            k = torch.arange(frames.shape[0], dtype=torch.float64)
            times = 1000.0 * (k * self.hop + (BLOCK - 1) / 2) * SPEC_HOP / SAMPLE_RATE
            result.append(NativeFrames(frames, times))
        return result

    def identity_payload(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "config": to_dict(self.config),
            "package": importlib.metadata.version("aisfx"),
            "librosa": importlib.metadata.version("librosa"),
            "weights": file_digest(self.weights_path),
        }
