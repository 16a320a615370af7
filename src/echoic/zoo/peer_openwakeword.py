"""``openwakeword``: Google's speech_embedding as shipped in openWakeWord 0.5.1 (a peer).

NON-COMMERCIAL: openWakeWord's code is Apache-2.0 but its bundled models are CC BY-NC-SA 4.0.

The adapter runs the package's own ONNX models through ``openwakeword.utils.AudioFeatures``
(onnxruntime, no TFLite): audio at 16 kHz is turned into 16-bit integer values
(``clip(x * 32767)``, truncated toward zero: the package accepts int16 PCM only), the mel model
gives 32-band frames every 10 ms (frame ``i`` = samples ``[160 i, 160 i + 512)``, window centre
``160 i + 200``; ``x / 10 + 2`` as in the package), and windows of 76 frames (≈ 0.78 s) every
``window_step`` frames (8 = 80 ms, as in the package) go through the embedding model → 96 values.
Window ``k`` is centred at ``160 (8 k + 37.5) + 200`` samples. Clips shorter than one window
(12,512 samples) are zero-padded. Scene = mean of the frames.

0.6.0 ships no models; install 0.5.1 without its TFLite dependency.
"""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from echoic.config import from_dict, to_dict
from echoic.errors import ConfigError
from echoic.zoo.base import NativeFrames, ZooModel, file_digest

WINDOW = 76  # mel frames per embedding window
MEL_HOP = 160  # samples
MEL_SPAN = 512  # samples read by one mel frame
MEL_CENTRE = 200  # samples from a mel frame's start to its window centre


def to_int16(clip: np.ndarray) -> np.ndarray:
    """float audio in [-1, 1] → int16 PCM as the adapter feeds openWakeWord."""
    return np.clip(clip * 32767.0, -32768, 32767).astype(np.int16)


@dataclass
class OpenWakeWordConfig:
    """Settings of :class:`OpenWakeWordModel`."""

    window_step: int = 8  # mel frames between embedding windows (8 = 80 ms, the package's)
    threads: int = 0  # onnxruntime threads; 0 = torch.get_num_threads()

    def __post_init__(self) -> None:
        if self.window_step < 1:
            raise ConfigError(f"window_step must be >= 1; found {self.window_step}")


class OpenWakeWordModel(ZooModel):
    """96-d speech embeddings every 80 ms (see module docstring)."""

    name = "openwakeword"
    label = "openwakeword speech_embedding (peer, NON-COMMERCIAL: CC BY-NC-SA 4.0 weights)"
    sample_rate = 16000
    embedding_size = 96
    min_samples = MEL_SPAN + (WINDOW - 1) * MEL_HOP
    cpu_only = "its ONNX models run in onnxruntime's CPU provider, as the package sets them up"

    def __init__(
        self,
        config: OpenWakeWordConfig | None = None,
        device: str | torch.device = "cpu",
        **options: Any,
    ) -> None:
        self.config = config or from_dict(OpenWakeWordConfig, options, where="openwakeword")
        from openwakeword.utils import AudioFeatures

        threads = self.config.threads or torch.get_num_threads()
        state = np.random.get_state()  # AudioFeatures draws a warm-up clip from numpy's global RNG
        try:
            self.features = AudioFeatures(inference_framework="onnx", ncpu=threads)
        finally:
            np.random.set_state(state)
        self.frame_hop_ms = 1000.0 * self.config.window_step * MEL_HOP / self.sample_rate
        self.to_device(device)  # CPU only: warns for a GPU (see cpu_only)

    def native(self, clips: list[np.ndarray]) -> list[NativeFrames]:
        windows: list[np.ndarray] = []
        counts: list[int] = []
        for clip in clips:
            mel = self.features._get_melspectrogram(to_int16(clip))
            starts = range(0, mel.shape[0] - WINDOW + 1, self.config.window_step)
            windows.extend(mel[s : s + WINDOW] for s in starts)
            counts.append(len(starts))
        batch = np.stack(windows)[..., None].astype(np.float32)
        out = np.asarray(self.features.embedding_model_predict(batch), dtype=np.float32)
        frames = torch.from_numpy(out.reshape(-1, self.embedding_size)).split(counts)
        step = self.config.window_step
        result = []
        for f in frames:
            centres = MEL_HOP * (step * torch.arange(f.shape[0], dtype=torch.float64) + 37.5)
            result.append(NativeFrames(f, 1000.0 * (centres + MEL_CENTRE) / self.sample_rate))
        return result

    def identity_payload(self) -> dict[str, Any]:
        import openwakeword

        folder = os.path.join(os.path.dirname(openwakeword.__file__), "resources", "models")
        return {
            "model": self.name,
            "config": {**to_dict(self.config), "threads": None},
            "package": importlib.metadata.version("openwakeword"),
            "weights": [
                file_digest(os.path.join(folder, f))
                for f in ("melspectrogram.onnx", "embedding_model.onnx")
            ],
        }
