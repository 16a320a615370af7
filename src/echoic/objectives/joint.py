"""A joint audio–text model: the files an audio–text objective exports, and the model they load.

An exported ``clap`` / ``slap`` model directory holds, beside the usual audio model
(``model.safetensors`` + ``config.json``, loadable by :func:`echoic.load` as any other)::

    text_tower.safetensors + text_tower.json   the text tower (echoic.text.save_text_tower)
    joint_heads.safetensors                    the audio and text projection heads
    joint.json                                 how the heads are built and used (below)

``joint.json``: ``format_version``, ``objective``, ``pool`` (how the audio encoder's last layer
becomes one vector: ``mean`` over non-padding tokens, ``cls``, or ``mean+max``), ``audio_head`` /
``text_head`` (lists of :class:`Head` specs applied in order), ``dim`` (the joint space's width),
``logit_scale`` (CLAP's learned inverse temperature; 1 / 0.07 where the method has none) and
``chunk_s`` (clips longer than this are embedded in equal chunks whose pooled vectors are
averaged, weighted by length, before the head); a ``collap`` export adds ``fusion`` (the file of
its text-conditioned chunk attention, :func:`echoic.objectives.collap.load_fusion`), which
:meth:`JointModel.embed_audio_chunks` (the chunks' own head vectors) feeds.

:class:`JointModel` loads it: ``embed_audio(waves)`` and ``embed_text(texts)`` give L2-normalised
``(B, dim)`` vectors of one space, compared by cosine similarity (zero-shot classification,
text↔audio retrieval: :mod:`echoic.evaluate.zeroshot`, :mod:`echoic.evaluate.textretrieval`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from echoic.checkpoint import EchoicModel, load_dir
from echoic.data.audio import prepare_audio
from echoic.data.batch import pad_batch
from echoic.errors import CheckpointError, ConfigError
from echoic.text import TextEncoder, load_text_tower, save_text_tower
from echoic.types import AudioBatch, EncoderOutput

__all__ = [
    "HEADS_FILE",
    "JOINT_FILE",
    "NORMS",
    "POOLS",
    "Head",
    "JointModel",
    "build_head",
    "is_joint_model",
    "pool_tokens",
    "save_joint",
]

JOINT_FILE = "joint.json"
HEADS_FILE = "joint_heads.safetensors"
FORMAT_VERSION = 1
POOLS = ("mean", "cls", "mean+max")
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}
NORMS = ("none", "batch", "layer")


class Head(nn.Sequential):
    """An MLP ``dims[0] → … → dims[-1]``: Linear, then (between layers) a norm (``none``,
    ``batch``: BatchNorm1d as BYOL's heads, ``layer``) and the activation (``relu``, ``gelu``).
    ``spec`` rebuilds it (:func:`build_head`)."""

    def __init__(self, dims: Sequence[int], norm: str = "none", activation: str = "relu") -> None:
        if len(dims) < 2 or norm not in NORMS or activation not in ACTIVATIONS:
            raise ConfigError(
                f"a head needs >= 2 dims, norm in {NORMS} and activation in "
                f"{tuple(ACTIVATIONS)}; found {list(dims)}, {norm!r}, {activation!r}."
            )
        layers: list[nn.Module] = []
        for i in range(len(dims) - 1):
            layers.append(nn.Linear(int(dims[i]), int(dims[i + 1])))
            if i < len(dims) - 2:
                if norm == "batch":
                    layers.append(nn.BatchNorm1d(int(dims[i + 1])))
                elif norm == "layer":
                    layers.append(nn.LayerNorm(int(dims[i + 1])))
                layers.append(ACTIVATIONS[activation]())
        super().__init__(*layers)
        self.spec = {"dims": [int(d) for d in dims], "norm": norm, "activation": activation}


def build_head(specs: Sequence[dict[str, Any]]) -> nn.Sequential:
    """The heads of ``specs`` (each :attr:`Head.spec`) applied one after the other."""
    return nn.Sequential(*(Head(**spec) for spec in specs))


def pool_tokens(out: EncoderOutput, pool: str) -> torch.Tensor:
    """``(B, D)`` one vector per item from the last layer: ``mean`` over non-padding tokens,
    ``cls`` (the summary token) or ``mean+max`` (BYOL-A's temporal mean + max)."""
    if pool == "cls":
        if out.cls_layers is None:
            raise ConfigError("pool 'cls' needs an encoder with a CLS token; use pool: mean.")
        return out.cls_layers[-1]
    frames, padded = out.last, out.padding_mask[..., None]
    count = (~padded).sum(1).clamp_min(1)
    mean = frames.masked_fill(padded, 0.0).sum(1) / count
    if pool == "mean":
        return mean
    return mean + frames.masked_fill(padded, float("-inf")).amax(1)


def _specs(head: nn.Sequential) -> list[dict[str, Any]]:
    return [dict(h.spec) for h in head if isinstance(h, Head)]


def save_joint(
    directory: str | os.PathLike[str],
    tower: TextEncoder,
    audio_head: nn.Sequential,
    text_head: nn.Sequential,
    record: dict[str, Any],
) -> list[str]:
    """Write the text tower, the heads (``nn.Sequential`` of :class:`Head`) and ``joint.json``
    into ``directory`` (module docstring); ``record`` adds ``objective``, ``pool``,
    ``logit_scale``, ``chunk_s``. Returns the file names written."""
    directory = Path(directory)
    save_text_tower(tower, directory)
    state = {f"audio.{k}": v for k, v in audio_head.state_dict().items()}
    state.update({f"text.{k}": v for k, v in text_head.state_dict().items()})
    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, directory / HEADS_FILE)
    meta = {
        "format_version": FORMAT_VERSION,
        "audio_head": _specs(audio_head),
        "text_head": _specs(text_head),
        "dim": _specs(audio_head)[-1]["dims"][-1],
        "chunk_s": 10.0,
        "logit_scale": 1 / 0.07,
        **record,
    }
    (directory / JOINT_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return ["text_tower.safetensors", "text_tower.json", HEADS_FILE, JOINT_FILE]


def is_joint_model(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` holds a joint audio–text model (``joint.json``)."""
    return (Path(directory) / JOINT_FILE).is_file()


class JointModel(nn.Module):
    """Audio model + text tower + heads: ``embed_audio`` / ``embed_text`` into one space.

    Build it with :meth:`load` (a directory exported by ``clap`` / ``slap``) or directly from its
    parts (tests construct one whose embeddings are known).
    """

    def __init__(
        self,
        audio: EchoicModel,
        text: TextEncoder,
        audio_head: nn.Module,
        text_head: nn.Module,
        pool: str = "mean",
        logit_scale: float = 1 / 0.07,
        chunk_s: float = 10.0,
        name: str = "",
    ) -> None:
        super().__init__()
        if pool not in POOLS:
            raise ConfigError(f"pool must be one of {POOLS}; found {pool!r}.")
        self.audio, self.text = audio, text
        self.audio_head, self.text_head = audio_head, text_head
        self.pool, self.logit_scale, self.chunk_s = pool, float(logit_scale), float(chunk_s)
        self.name = name or audio.label
        self.eval()

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> JointModel:
        """Load an exported joint model directory (module docstring)."""
        directory = Path(directory)
        if not is_joint_model(directory):
            raise CheckpointError(
                f"{directory}: no {JOINT_FILE}; expected a model exported by an audio–text "
                "objective (echoic pretrain with objective clap or slap)."
            )
        meta = json.loads((directory / JOINT_FILE).read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(
                f"{directory / JOINT_FILE}: format_version {meta.get('format_version')!r} is not "
                f"supported (expected {FORMAT_VERSION}); upgrade echoic."
            )
        audio_head, text_head = build_head(meta["audio_head"]), build_head(meta["text_head"])
        state = load_file(str(directory / HEADS_FILE))
        for prefix, head in (("audio.", audio_head), ("text.", text_head)):
            head.load_state_dict(
                {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)},
                strict=True,
            )
        return cls(
            load_dir(directory),
            load_text_tower(directory),
            audio_head,
            text_head,
            pool=meta["pool"],
            logit_scale=meta["logit_scale"],
            chunk_s=meta["chunk_s"],
            name=directory.name,
        )

    @property
    def sample_rate(self) -> int:
        return self.audio.sample_rate

    @property
    def dim(self) -> int:
        probe = self.text_head(torch.zeros(2, self.text.dim))
        return int(probe.shape[-1])

    @property
    def identity(self) -> str:
        """Stable key of what both sides compute (weights, heads, text tower, pooling, chunking)."""
        digest = hashlib.sha256(self.text.identity.encode())
        for part in (self.audio, self.audio_head, self.text_head):
            for key, tensor in sorted(part.state_dict().items()):
                digest.update(key.encode())
                digest.update(
                    tensor.detach()
                    .cpu()
                    .contiguous()
                    .reshape(-1)
                    .view(torch.uint8)
                    .numpy()
                    .tobytes()
                )
        digest.update(json.dumps([self.pool, self.chunk_s], sort_keys=True).encode())
        digest.update(json.dumps(self.audio.config.encoder_config, sort_keys=True).encode())
        return f"joint-{self.name}-{digest.hexdigest()[:16]}"

    @torch.inference_mode()
    def embed_text(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """``(B, dim)`` L2-normalised joint vectors of ``texts``."""
        vectors = self.text.embed(list(texts), batch_size=batch_size)
        return F.normalize(self.text_head(vectors).float(), dim=-1)

    def _chunk_vectors(
        self, waves: Sequence[torch.Tensor | np.ndarray], sample_rate: int | None, batch_size: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every clip cut into equal chunks of at most ``chunk_s``: the chunks' ``(P, W)`` pooled
        vectors, their ``(P,)`` lengths in samples and ``(P,)`` owning clip (clip-major)."""
        rate, frontend = self.sample_rate, self.audio.frontend
        pieces: list[torch.Tensor] = []
        owner: list[int] = []
        chunk = max(int(self.chunk_s * rate), frontend.min_samples)
        for i, wave in enumerate(waves):
            x, length = prepare_audio(
                wave, sample_rate, rate, frontend.min_samples, frontend.channels
            )
            n = max(length, frontend.min_samples)
            count = max(1, math.ceil(n / chunk))
            size = math.ceil(n / count)
            for k in range(count):
                pieces.append(
                    torch.from_numpy(np.ascontiguousarray(x[..., k * size : (k + 1) * size]))
                )
                owner.append(i)
        device = next(self.audio.parameters()).device
        pooled, weights = [], []
        for lo in range(0, len(pieces), batch_size):
            batch = pad_batch(pieces[lo : lo + batch_size], rate)
            batch = AudioBatch(batch.waveform.to(device), batch.lengths.to(device), rate)
            pooled.append(pool_tokens(self.audio(batch), self.pool).float().cpu())
            weights.append(batch.lengths.float().cpu())
        return torch.cat(pooled), torch.cat(weights), torch.tensor(owner)

    @torch.inference_mode()
    def embed_audio(
        self,
        waves: Sequence[torch.Tensor | np.ndarray],
        sample_rate: int | None = None,
        batch_size: int = 8,
    ) -> torch.Tensor:
        """``(B, dim)`` L2-normalised joint vectors of clips of any length (``(S,)`` mono, or
        ``(C, S)`` for a multichannel model) at ``sample_rate`` (default: the model's)."""
        if not waves:
            return torch.zeros(0, self.dim)
        vectors, weight, index = self._chunk_vectors(waves, sample_rate, batch_size)
        return self._clip_vectors(vectors, weight, index, len(waves))

    def _clip_vectors(
        self, vectors: torch.Tensor, weight: torch.Tensor, index: torch.Tensor, clips: int
    ) -> torch.Tensor:
        """``(clips, dim)``: the audio head of each clip's length-weighted mean chunk vector."""
        total = torch.zeros(clips, vectors.shape[1]).index_add_(0, index, vectors * weight[:, None])
        norm = torch.zeros(clips).index_add_(0, index, weight)
        device = next(self.audio.parameters()).device
        clip = (total / norm[:, None]).to(device)
        return F.normalize(self.audio_head(clip).float(), dim=-1).cpu()

    @torch.inference_mode()
    def embed_audio_chunks(
        self,
        waves: Sequence[torch.Tensor | np.ndarray],
        sample_rate: int | None = None,
        batch_size: int = 8,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each clip's chunk embeddings, for a text-conditioned fusion (``collap``): ``(B, K,
        dim)`` L2-normalised audio-head vectors of the chunks :meth:`embed_audio` averages (``K``
        the most chunks of a clip; rows past a clip's own chunks are 0), the ``(B, K)`` bool of
        real chunks, and :meth:`embed_audio`'s ``(B, dim)`` vectors (computed from the same
        chunks)."""
        if not waves:
            return (
                torch.zeros(0, 1, self.dim),
                torch.zeros(0, 1, dtype=torch.bool),
                torch.zeros(0, self.dim),
            )
        vectors, weight, index = self._chunk_vectors(waves, sample_rate, batch_size)
        glob = self._clip_vectors(vectors, weight, index, len(waves))
        device = next(self.audio.parameters()).device
        chunks = F.normalize(self.audio_head(vectors.to(device)).float(), dim=-1).cpu()
        counts = torch.bincount(index, minlength=len(waves))
        position = torch.arange(len(index)) - (torch.cumsum(counts, 0) - counts)[index]
        out = torch.zeros(len(waves), int(counts.max()), chunks.shape[1])
        valid = torch.zeros(len(waves), int(counts.max()), dtype=torch.bool)
        out[index, position] = chunks
        valid[index, position] = True
        return out, valid, glob
