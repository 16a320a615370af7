"""The shared machinery of zoo models: input checks, resampling, timestamps, identity.

A zoo model implements :meth:`ZooModel.native` — clips at the model's rate, each at least
``min_samples`` long → its native frame embeddings ``(T, D)`` at regularly spaced centre times
``(T,)`` ms (and optionally its own scene embedding) — and this base class turns those into
:class:`~echoic.embed.base.ClipEmbedding` s exactly as the echoic Embedder does (timestamps from
:func:`echoic.embed.timestamps.regular_timestamps`, scene = mean of the frames unless the model
says otherwise).

Devices: :meth:`ZooModel.to_device` moves the networks a model lists in :meth:`ZooModel.networks`
to a GPU (``"cuda"``, ``"cuda:N"``, ``"auto"``); their outputs come back as CPU float32 and the
identity does not change. Models without a network to move (statistics baselines, ONNX peers) say
why in ``cpu_only`` and stay on the CPU with a warning.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from echoic.data.audio import prepare_audio
from echoic.embed.base import ClipEmbedding, EmbeddingMethods, with_numerics_version
from echoic.embed.device import exact_fp32, resolve_device
from echoic.embed.timestamps import regular_timestamps


@dataclass
class NativeFrames:
    """One clip's native output: ``frames`` ``(T, D)`` float32 at ``times_ms`` ``(T,)`` float64
    (regular hop ``ZooModel.frame_hop_ms``); ``scene`` ``(D,)`` or None for the mean of frames."""

    frames: torch.Tensor
    times_ms: torch.Tensor
    scene: torch.Tensor | None = None


def file_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 hex digest of a file (weights shipped by a peer package)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 hex digest of named tensors (order-independent)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(tensors.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class ZooModel(EmbeddingMethods):
    """Base class of zoo models (an :class:`~echoic.embed.base.EmbeddingModel`).

    Subclasses set ``name``, ``label``, ``sample_rate``, ``embedding_size``, ``min_samples`` and
    ``frame_hop_ms``, and implement :meth:`native` and :meth:`identity_payload`.
    """

    name: str = ""
    label: str = ""
    sample_rate: int = 16000
    embedding_size: int = 0
    min_samples: int = 1
    frame_hop_ms: float = 0.0
    max_timestamp_hop_ms: float = 50.0
    channels: int = 1  # audio channels a clip has: 1 = mono (S,); C > 1 = (C, S) channel-first
    device: torch.device = torch.device("cpu")  # where networks() run (to_device)
    cpu_only: str = "it has no network to move"  # why to_device keeps it on the CPU

    _identity: str | None = None

    # ------------------------------------------------------------------ to implement
    def native(self, clips: list[np.ndarray]) -> list[NativeFrames]:
        """Native frames of each clip (float32 ``(S,)``, or ``(C, S)`` when ``channels`` > 1, at
        ``sample_rate``, ``S ≥ min_samples``)."""
        raise NotImplementedError

    def identity_payload(self) -> dict[str, Any]:
        """Everything the embeddings depend on (config, package version, weights digest)."""
        raise NotImplementedError

    def networks(self) -> list[torch.nn.Module]:
        """The torch modules :meth:`to_device` moves (``native`` feeds them inputs on
        ``self.device`` and brings outputs back to the CPU); [] = CPU only (see ``cpu_only``)."""
        return []

    # ------------------------------------------------------------------ shared
    def to_device(self, device: str | torch.device) -> ZooModel:
        """Run the networks on ``device`` from now on (``"cpu"``, ``"cuda"``, ``"cuda:N"``,
        ``"auto"``); returns ``self``. The identity does not change."""
        target = resolve_device(device)
        networks = self.networks()
        if target.type != "cpu" and not networks:
            warnings.warn(
                f"{self.name or type(self).__name__} runs on the CPU only ({self.cpu_only}); "
                f"device {str(target)!r} ignored",
                stacklevel=2,
            )
            return self
        for network in networks:
            network.to(target)
        self.device = target
        return self

    @property
    def identity(self) -> str:
        """Stable key that changes whenever the embeddings would (used as a cache key)."""
        if self._identity is None:
            meta = with_numerics_version(self.identity_payload())
            payload = json.dumps(meta, sort_keys=True, default=str)
            self._identity = f"{self.name}-{hashlib.sha256(payload.encode()).hexdigest()[:16]}"
        return self._identity

    def prepare(
        self, wave: torch.Tensor | np.ndarray, sample_rate: int | None
    ) -> tuple[np.ndarray, int]:
        """Float32 at the model's rate — ``(S,)`` mono (a ``(C, S)`` clip is mixed down) or, for a
        model of ``channels`` C > 1, ``(C, S)`` — zero-padded to ``min_samples``; and the length
        before padding (:func:`echoic.data.audio.prepare_audio`)."""
        return prepare_audio(wave, sample_rate, self.sample_rate, self.min_samples, self.channels)

    @torch.inference_mode()
    def embed(
        self, waveforms: Sequence[torch.Tensor | np.ndarray], sample_rate: int | None = None
    ) -> list[ClipEmbedding]:
        """Embed clips of any lengths at ``sample_rate`` (default the model's): 1-D mono arrays, or
        ``(C, S)`` for a model of ``channels`` C > 1."""
        if len(waveforms) == 0:
            return []
        prepared = [self.prepare(w, sample_rate) for w in waveforms]
        with exact_fp32():
            outputs = self.native([clip for clip, _ in prepared])
        result = []
        for (_, length), out in zip(prepared, outputs, strict=True):
            frames = out.frames.float()
            duration_ms = 1000.0 * length / self.sample_rate
            ts, ts_ms = regular_timestamps(
                frames, out.times_ms, duration_ms, self.frame_hop_ms, self.max_timestamp_hop_ms
            )
            scene = frames.mean(0) if out.scene is None else out.scene.float()
            result.append(
                ClipEmbedding(
                    scene=scene.contiguous(),
                    frames=frames,
                    frame_times_ms=out.times_ms.to(torch.float64),
                    timestamps=ts,
                    timestamps_ms=ts_ms,
                )
            )
        return result

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(label={self.label!r}, {self.embedding_size}-d at "
            f"{self.sample_rate} Hz)"
        )
