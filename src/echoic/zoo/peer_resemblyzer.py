"""``resemblyzer``: the Resemblyzer GE2E speaker encoder (a peer, Apache-2.0).

The adapter runs the PyPI package ``resemblyzer`` (0.1.4) and its bundled weights exactly as
``VoiceEncoder.embed_utterance(wav, return_partials=True)`` does: the clip is cut into partial
utterances of 160 mel frames (1.6 s) starting every ``round(16000 / rate / 160)`` frames
(``rate`` = 1.3 per second → 0.77 s), the last one kept only if it is at least ``min_coverage``
full (zero-padded); each partial gives an L2-normalised 256-d embedding (the native frames, centred
at ``(start + 79.5) * 10`` ms) and the scene embedding is the L2-normalised mean of the partials.

Before that, like ``resemblyzer.preprocess_wav``, the volume is raised (never lowered) to
-30 dBFS (``resemblyzer.normalize_volume``). Unlike it, long silences are **not** trimmed (its
WebRTC VAD would shift every timestamp). Audio at other rates is resampled to 16 kHz by echoic
(soxr) rather than librosa.
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

PARTIAL_FRAMES = 160
MEL_HOP_MS = 10.0


@dataclass
class ResemblyzerConfig:
    """Settings of :class:`ResemblyzerModel` (defaults: the package's)."""

    rate: float = 1.3  # partial utterances per second
    min_coverage: float = 0.75
    normalize_volume: bool = True

    def __post_init__(self) -> None:
        if not 0.625 <= self.rate <= 100:
            raise ConfigError(
                f"rate must be in [0.625, 100] partials per second; found {self.rate}"
            )
        if not 0 < self.min_coverage <= 1:
            raise ConfigError(f"min_coverage must be in (0, 1]; found {self.min_coverage}")


class ResemblyzerModel(ZooModel):
    """256-d speaker embeddings of 1.6 s partial utterances (see module docstring)."""

    name = "resemblyzer"
    label = "resemblyzer (peer: GE2E speaker encoder, Apache-2.0)"
    sample_rate = 16000
    embedding_size = 256
    min_samples = 1

    def __init__(
        self,
        config: ResemblyzerConfig | None = None,
        device: str | torch.device = "cpu",
        **options: Any,
    ) -> None:
        self.config = config or from_dict(ResemblyzerConfig, options, where="resemblyzer")
        import resemblyzer
        from resemblyzer import audio

        self.audio = audio
        with torch.random.fork_rng(devices=[]):  # its LSTM init would draw from the global RNG
            self.encoder = resemblyzer.VoiceEncoder(device="cpu", verbose=False).eval()
        self.weights_path = os.path.join(os.path.dirname(resemblyzer.__file__), "pretrained.pt")
        step = round((self.sample_rate / self.config.rate) / (self.sample_rate * MEL_HOP_MS / 1000))
        self.frame_hop_ms = step * MEL_HOP_MS
        self.to_device(device)

    def networks(self) -> list[torch.nn.Module]:
        return [self.encoder]

    def preprocess(self, clip: np.ndarray) -> np.ndarray:
        """The volume normalisation of ``resemblyzer.preprocess_wav``; clips whose float32 RMS
        underflows to 0 (digital silence, or ~1e-30 decoder noise) are left untouched instead of
        being multiplied by infinity."""
        if not self.config.normalize_volume:
            return clip
        with np.errstate(all="ignore"):
            louder = self.audio.normalize_volume(clip, -30, increase_only=True)
        if not np.all(np.isfinite(louder)):
            return clip
        return louder.astype(np.float32)

    def native(self, clips: list[np.ndarray]) -> list[NativeFrames]:
        mels, starts = [], []
        for clip in clips:
            wav = self.preprocess(clip)
            wav_slices, mel_slices = self.encoder.compute_partial_slices(
                len(wav), self.config.rate, self.config.min_coverage
            )
            if wav_slices[-1].stop >= len(wav):
                wav = np.pad(wav, (0, wav_slices[-1].stop - len(wav)))
            mel = self.audio.wav_to_mel_spectrogram(wav)
            mels.append(np.stack([mel[s] for s in mel_slices]))
            starts.append([s.start for s in mel_slices])
        batch = torch.from_numpy(np.concatenate(mels))
        partials = self.encoder(batch.to(self.device)).cpu().split([len(s) for s in starts])
        out = []
        for frames, first in zip(partials, starts, strict=True):
            mean = frames.mean(0)
            times = (torch.tensor(first, dtype=torch.float64) + (PARTIAL_FRAMES - 1) / 2) * 10.0
            out.append(NativeFrames(frames, times, mean / torch.linalg.vector_norm(mean)))
        return out

    def identity_payload(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "config": to_dict(self.config),
            "package": importlib.metadata.version("resemblyzer"),
            "weights": file_digest(self.weights_path),
        }
