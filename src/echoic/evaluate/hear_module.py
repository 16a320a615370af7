"""Any HEAR 2021 API module as an :class:`~echoic.embed.base.EmbeddingModel`.

``HearModuleModel("pkg.module", weights="path")`` imports the module, calls
``load_model(weights)`` (or ``load_model()`` without weights) and then
``get_scene_embeddings`` / ``get_timestamp_embeddings`` on batches of equal-length clips at the
model's ``sample_rate``. The cache identity hashes the module name, its package version and the
weights file, so new weights or a new release re-embed. ``device="cuda"`` does what hear-eval-kit
does on a GPU: ``model.to("cuda")`` and audio handed over as CUDA tensors (outputs come back to the
CPU); the device is not part of the identity.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from echoic.data.audio import resample
from echoic.embed.base import ClipEmbedding
from echoic.embed.device import resolve_device
from echoic.errors import ConfigError, EchoicError


class HearModuleModel:
    """Adapter from the HEAR API (module functions + model object) to ``EmbeddingModel``."""

    def __init__(
        self,
        module: str,
        weights: str | None = None,
        batch_size: int = 16,
        device: str = "cpu",
        **options: Any,
    ) -> None:
        try:
            self.module = importlib.import_module(module)
        except ImportError as err:
            raise EchoicError(
                f"cannot import HEAR module {module!r} ({err}); install the package that provides "
                "it (pip install ...) or check the spelling"
            ) from err
        for fn in ("load_model", "get_scene_embeddings", "get_timestamp_embeddings"):
            if not hasattr(self.module, fn):
                raise EchoicError(f"{module} has no {fn}(); expected a HEAR 2021 API module")
        self.weights = weights
        self.options = options
        self.model = (
            self.module.load_model(weights, **options)
            if weights
            else self.module.load_model(**options)
        )
        self.device = resolve_device(device)
        if isinstance(self.model, torch.nn.Module):
            self.model.eval()
            self.model.to(self.device)  # as hear-eval-kit does
        elif self.device.type != "cpu":
            raise ConfigError(
                f"{module}'s model is a {type(self.model).__name__}, not a torch module: echoic "
                f"cannot move it to {str(self.device)!r}; embed it with device 'cpu'"
            )
        self.sample_rate = int(self.model.sample_rate)
        self.embedding_size = int(getattr(self.model, "scene_embedding_size", 0))
        self.min_samples = 1
        self.batch_size = batch_size
        name = f"{module} ({Path(weights).name})" if weights else module
        self.label = name
        self.identity = self._identity(module)

    def _identity(self, module: str) -> str:
        digest = hashlib.sha256(module.encode())
        top = module.split(".")[0]
        try:
            digest.update(importlib.metadata.version(top).encode())
        except importlib.metadata.PackageNotFoundError:
            digest.update(str(getattr(self.module, "__file__", "")).encode())
        if self.weights:
            path = Path(self.weights)
            if path.is_file():
                with path.open("rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(block)
            else:
                digest.update(str(self.weights).encode())
        digest.update(repr(sorted(self.options.items())).encode())
        return f"hear-{module}-{digest.hexdigest()[:16]}"

    def _batches(
        self, waveforms: Sequence[torch.Tensor | np.ndarray], sample_rate: int | None
    ) -> list[tuple[list[int], torch.Tensor]]:
        """Clips at the model's rate, grouped into equal-length batches ``(B, S)``."""
        clips = []
        for w in waveforms:
            x = np.asarray(w.detach().cpu() if isinstance(w, torch.Tensor) else w, np.float32)
            if sample_rate is not None and sample_rate != self.sample_rate:
                x = resample(x, sample_rate, self.sample_rate)
            clips.append(x)
        by_len: dict[int, list[int]] = {}
        for i, c in enumerate(clips):
            by_len.setdefault(int(c.shape[0]), []).append(i)
        out = []
        for idx in by_len.values():
            for lo in range(0, len(idx), self.batch_size):
                part = idx[lo : lo + self.batch_size]
                out.append((part, torch.from_numpy(np.stack([clips[i] for i in part]))))
        return out

    @torch.no_grad()
    def scene_embeddings(
        self, waveforms: Sequence[torch.Tensor | np.ndarray], sample_rate: int | None = None
    ) -> torch.Tensor:
        """``(B, D)`` scene embeddings, in input order."""
        rows: dict[int, torch.Tensor] = {}
        for idx, audio in self._batches(waveforms, sample_rate):
            audio = audio.to(self.device)
            emb = torch.as_tensor(self.module.get_scene_embeddings(audio, self.model))
            rows.update({i: e.float().cpu() for i, e in zip(idx, emb, strict=True)})
        return torch.stack([rows[i] for i in range(len(waveforms))])

    @torch.no_grad()
    def timestamp_embeddings(
        self, waveforms: Sequence[torch.Tensor | np.ndarray], sample_rate: int | None = None
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per clip: ``(T, D)`` embeddings and ``(T,)`` timestamps in ms, in input order."""
        rows: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for idx, audio in self._batches(waveforms, sample_rate):
            emb, ts = self.module.get_timestamp_embeddings(audio.to(self.device), self.model)
            emb, ts = torch.as_tensor(emb), torch.as_tensor(ts)
            for k, i in enumerate(idx):
                rows[i] = (emb[k].float().cpu(), ts[k].double().cpu())
        return [rows[i] for i in range(len(waveforms))]

    def embed(
        self, waveforms: Sequence[torch.Tensor | np.ndarray], sample_rate: int | None = None
    ) -> list[ClipEmbedding]:
        scenes = self.scene_embeddings(waveforms, sample_rate)
        stamps = self.timestamp_embeddings(waveforms, sample_rate)
        return [
            ClipEmbedding(scene=s, frames=f, frame_times_ms=t, timestamps=f, timestamps_ms=t)
            for s, (f, t) in zip(scenes, stamps, strict=True)
        ]
