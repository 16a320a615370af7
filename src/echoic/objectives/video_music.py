"""Video–music retrieval over a visual stream (issue 23 item 6): shared parts, and seed 14.

No real video can be had offline, so the methods read a generic **visual stream**: a sequence of
frame embeddings ``(T, Dv)`` from any image encoder (:func:`visual_stream` runs an
:mod:`echoic.vision` tower frame by frame), against a **music stream** ``(T', Dm)`` of frame
embeddings from any audio model. Both papers do the same with frozen backbones (CLIP frames;
MERT / DeepSim music); here the test pairing is animated score frames ↔ their audio
(:mod:`echoic.tasks.score_frames`, docs/video_music.md).

* :class:`StreamEncoder`: LayerNorm → Linear to ``width`` + learned positions, then
  ``temporal="attention"`` (attention pooling: a learned query scores every frame, softmax over the
  unpadded ones) or ``"transformer"`` (one pre-norm transformer layer, then the same pooling).
* :class:`SemiSupervisedModel` (``semi_supervised``; Stewart et al., *Semi-Supervised Contrastive
  Learning for Controllable Video-to-Music Retrieval*, 2025): one stream encoder per modality
  feeds **two** joint spaces, each through its own pair of heads: a self-supervised space trained
  by symmetric InfoNCE over the paired clips (:func:`info_nce`), a label-supervised one by
  cross-modal supervised contrast (:func:`label_contrastive`: every clip of the query's label is a
  positive). Loss ``InfoNCE + label_weight · SupCon``. At inference :func:`mix_similarity` gives
  ``α · sim_self + (1 − α) · sim_label``: α = 1 ranks by the pairing alone, α = 0 by the labels.
  (The paper mixes the *embeddings*, ``(1 − α) z_ssl + α z_sup``, with α weighting the labels;
  mixing cosines is the same as comparing ``[√α z_self, √(1 − α) z_label]``, without cross terms.)
* The language-guided trimodal model (seed 23) is :mod:`echoic.objectives.video_music_text`.

Why here: a model with its losses is what ``objectives/`` holds, below ``train`` and ``evaluate``
and above ``vision`` / ``text`` (it uses their towers); as the audio–sheet two-tower
(:mod:`echoic.objectives.sheet`) it is not an ``OBJECTIVES`` entry, whose contract is an audio SSL
loss in the Lightning loop over corpus crops: it trains on precomputed streams in a plain loop
(:mod:`echoic.train.video_music`). Its own registry, :data:`VIDEO_MUSIC_MODELS` (name → model
class with its config class), lets ``load`` rebuild any saved model and a contract test run every
entry at a tiny size.

Saved model directory (:meth:`VideoMusicModel.save` / :func:`load_video_music`):
``video_music.safetensors`` (every weight) and ``video_music.json`` (format version, model name,
config, provenance). No pickle.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from echoic.checkpoint import atomic_write
from echoic.config import from_dict, to_dict
from echoic.errors import CheckpointError, ConfigError
from echoic.objectives.audio_text import symmetric_cross_entropy
from echoic.objectives.joint import Head
from echoic.registry import Registry
from echoic.vision import ImageEncoder, image_batch

__all__ = [
    "VIDEO_MUSIC_MODELS",
    "SemiSupervisedConfig",
    "SemiSupervisedModel",
    "StreamBatch",
    "StreamConfig",
    "StreamEncoder",
    "StreamInput",
    "VideoMusicModel",
    "batches",
    "info_nce",
    "label_contrastive",
    "load_video_music",
    "mix_similarity",
    "pad_streams",
    "padding_mask",
    "visual_stream",
]

WEIGHTS_FILE = "video_music.safetensors"
META_FILE = "video_music.json"
FORMAT_VERSION = 1
TEMPORAL = ("attention", "transformer")

VIDEO_MUSIC_MODELS: Registry[type[VideoMusicModel]] = Registry(
    "video-music model", discover_package="echoic.objectives"
)


# ------------------------------------------------------------------ streams
@torch.inference_mode()
def visual_stream(
    tower: ImageEncoder, clips: Sequence[np.ndarray], batch_size: int = 256
) -> list[torch.Tensor]:
    """Embed every frame of every clip: ``(T_i, H, W)`` uint8 frames (H the tower's height) →
    ``(T_i, tower.dim)`` float32 per clip (tower in eval mode)."""
    tower.eval()
    frames = [f for clip in clips for f in clip]
    parts = [
        tower(image_batch(frames[i : i + batch_size], tower.height, tower.width))
        for i in range(0, len(frames), batch_size)
    ]
    vectors = torch.cat(parts) if parts else torch.zeros(0, tower.dim)
    return list(vectors.split([len(clip) for clip in clips]))


def pad_streams(streams: Sequence[torch.Tensor | np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(T_i, D)`` sequences → ``(N, max T, D)`` float32, zero-padded, and ``(N,)`` lengths."""
    if not streams:
        raise ConfigError("expected at least one stream; found none")
    tensors = [torch.as_tensor(s, dtype=torch.float32) for s in streams]
    if any(t.ndim != 2 or len(t) == 0 for t in tensors) or len({t.shape[1] for t in tensors}) > 1:
        shapes = sorted({tuple(t.shape) for t in tensors})[:4]
        raise ConfigError(f"expected non-empty (T, D) streams of one D; found shapes {shapes}")
    lens = torch.tensor([len(t) for t in tensors])
    out = torch.zeros(len(tensors), int(lens.max()), tensors[0].shape[1])
    for i, t in enumerate(tensors):
        out[i, : len(t)] = t
    return out, lens


StreamInput = tuple[torch.Tensor, torch.Tensor]
"""A padded stream ``(N, T, D)`` and its ``(N,)`` lengths (:func:`pad_streams`)."""


def batches(stream: StreamInput, size: int) -> list[StreamInput]:
    """``stream`` cut into batches of ``size`` rows, each trimmed to its longest row."""
    x, lens = stream
    out = []
    for lo in range(0, len(x), size):
        n = lens[lo : lo + size]
        out.append((x[lo : lo + size, : int(n.max())], n))
    return out


def padding_mask(lens: torch.Tensor, steps: int) -> torch.Tensor:
    """``(B, steps)`` bool, True where ``t >= lens[b]`` (padding)."""
    return torch.arange(steps, device=lens.device)[None, :] >= lens[:, None]


@dataclass
class StreamBatch:
    """Paired clips: row ``i`` of the visual and music streams are one clip. ``labels``: the
    label-space class of each clip; ``text``: ``(B, Dt)`` prompt embeddings (trimodal only)."""

    visual: torch.Tensor
    visual_lens: torch.Tensor
    music: torch.Tensor
    music_lens: torch.Tensor
    labels: torch.Tensor
    text: torch.Tensor | None = None


@dataclass
class StreamConfig:
    """A :class:`StreamEncoder`: ``width``, at most ``max_len`` steps, the temporal model."""

    width: int = 128
    max_len: int = 64
    temporal: str = "attention"
    heads: int = 4
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.temporal not in TEMPORAL:
            raise ConfigError(f"temporal must be one of {TEMPORAL}; found {self.temporal!r}.")
        if self.width < 1 or self.max_len < 1 or self.width % self.heads:
            raise ConfigError(
                f"expected width >= 1 divisible by heads and max_len >= 1; found width "
                f"{self.width}, heads {self.heads}, max_len {self.max_len}."
            )


def transformer_layer(width: int, heads: int, dropout: float) -> nn.TransformerEncoderLayer:
    return nn.TransformerEncoderLayer(
        width, heads, 2 * width, dropout, activation="gelu", batch_first=True, norm_first=True
    )


class StreamEncoder(nn.Module):
    """``(B, T, in_dim)`` frames + ``(B,)`` lengths → ``(B, width)`` (module docstring)."""

    def __init__(self, in_dim: int, config: StreamConfig) -> None:
        super().__init__()
        self.in_dim, self.config = in_dim, config
        self.project = nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, config.width))
        self.position = nn.Parameter(torch.randn(config.max_len, config.width) * 0.02)
        self.block = (
            transformer_layer(config.width, config.heads, config.dropout)
            if config.temporal == "transformer"
            else None
        )
        self.query = nn.Parameter(torch.randn(config.width) * 0.02)
        self.key = nn.Linear(config.width, config.width)

    def tokens(self, x: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, width)`` frame tokens (after the transformer layer, if any) and the ``(B, T)``
        padding mask (True on padding)."""
        if x.ndim != 3 or x.shape[-1] != self.in_dim or not 0 < x.shape[1] <= self.config.max_len:
            raise ConfigError(
                f"stream encoder reads (B, T <= {self.config.max_len}, {self.in_dim}); found "
                f"{tuple(x.shape)}. Fix: build it with this input width, or a larger max_len."
            )
        if lens.shape != x.shape[:1] or int(lens.min()) < 1 or int(lens.max()) > x.shape[1]:
            raise ConfigError(
                f"expected (B,) lengths in 1..{x.shape[1]} for B={x.shape[0]}; found "
                f"{lens.tolist()[:8]} of shape {tuple(lens.shape)}"
            )
        mask = padding_mask(lens, x.shape[1])
        tokens = self.project(x) + self.position[: x.shape[1]]
        if self.block is not None:
            tokens = self.block(tokens, src_key_padding_mask=mask)
        return tokens.masked_fill(mask[..., None], 0.0), mask

    def pool(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Attention pooling of ``(B, T, width)`` tokens over the unmasked steps → ``(B, width)``."""
        scores = self.key(tokens) @ self.query / math.sqrt(self.config.width)
        weights = scores.masked_fill(mask, float("-inf")).softmax(dim=1)
        return (weights[..., None] * tokens).sum(dim=1)

    def forward(self, x: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        return self.pool(*self.tokens(x, lens))


# ------------------------------------------------------------------ losses
def info_nce(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP's) of L2-normalised ``(B, D)`` rows paired ``a[i] ↔ b[i]``."""
    return symmetric_cross_entropy(scale * a @ b.t())


def label_contrastive(
    a: torch.Tensor, b: torch.Tensor, labels: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """Cross-modal supervised contrast (SupCon, Khosla et al. 2020, across two modalities): for
    each row of ``a``, the mean over the rows of ``b`` sharing its label of ``−log softmax`` of
    ``scale · a bᵀ``; the same from ``b`` to ``a``; the mean of both directions."""
    positive = (labels[:, None] == labels[None, :]).float()
    logits = scale * a @ b.t()
    losses = []
    for matrix in (logits, logits.t()):
        log_p = matrix.log_softmax(dim=1)
        losses.append((-(log_p * positive).sum(1) / positive.sum(1)).mean())
    return 0.5 * (losses[0] + losses[1])


def mix_similarity(
    sim_self: torch.Tensor | np.ndarray, sim_label: torch.Tensor | np.ndarray, alpha: float
) -> Any:
    """``α · sim_self + (1 − α) · sim_label`` for α in [0, 1] (α = 1: the pairing alone)."""
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be in [0, 1]; found {alpha}.")
    return alpha * sim_self + (1.0 - alpha) * sim_label


# ------------------------------------------------------------------ models
class VideoMusicModel(nn.Module):
    """Base of the registered video–music models: a config, a loss, embeddings, files."""

    name: ClassVar[str] = ""
    config_class: ClassVar[type[Any]]

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    def loss(self, batch: StreamBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """The training loss of one batch and numbers to log."""
        raise NotImplementedError

    def scale(self, parameter: nn.Parameter) -> torch.Tensor:
        """``exp(t)``, ``t`` clamped to ``[0, log(max_logit_scale)]`` (CLIP's temperature)."""
        return parameter.clamp(0.0, math.log(self.config.max_logit_scale)).exp()

    @torch.no_grad()
    def clamp_scales(self) -> None:
        for name, parameter in self.named_parameters():
            if name.endswith("logit_scale"):
                parameter.clamp_(0.0, math.log(self.config.max_logit_scale))

    def save(self, directory: str | os.PathLike[str], **provenance: Any) -> Path:
        """Write ``video_music.safetensors`` + ``video_music.json`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        atomic_write(directory / WEIGHTS_FILE, lambda p: save_file(state, p))
        meta = {
            "format_version": FORMAT_VERSION,
            "model": self.name,
            "config": to_dict(self.config),
            "provenance": provenance,
        }
        text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
        atomic_write(directory / META_FILE, lambda p: Path(p).write_text(text))
        return directory


def load_video_music(directory: str | os.PathLike[str]) -> VideoMusicModel:
    """Rebuild a model saved by :meth:`VideoMusicModel.save` (eval mode)."""
    directory = Path(directory)
    meta_path = directory / META_FILE
    if not meta_path.is_file() or not (directory / WEIGHTS_FILE).is_file():
        raise CheckpointError(
            f"{directory}: expected {META_FILE} and {WEIGHTS_FILE} (written by "
            "VideoMusicModel.save); found neither or one. benchmarks/video_music.py writes them."
        )
    meta = json.loads(meta_path.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{meta_path}: format_version {meta.get('format_version')!r}; expected "
            f"{FORMAT_VERSION}. Upgrade echoic or retrain."
        )
    cls = VIDEO_MUSIC_MODELS.get(str(meta.get("model")))
    config = from_dict(cls.config_class, meta["config"], where=str(meta_path))
    model = cls(config)
    model.load_state_dict(load_file(str(directory / WEIGHTS_FILE)), strict=True)
    return model.eval()


@dataclass
class SemiSupervisedConfig:
    """A :class:`SemiSupervisedModel`: input widths, stream encoders, the two spaces' width
    ``dim``, ``labels`` classes, the loss weight of the label space, the temperatures."""

    visual_dim: int = 128
    music_dim: int = 192
    stream: StreamConfig = field(default_factory=StreamConfig)
    dim: int = 64
    labels: int = 4
    label_weight: float = 1.0
    init_temperature: float = 0.07
    max_logit_scale: float = 100.0

    def __post_init__(self) -> None:
        if min(self.visual_dim, self.music_dim, self.dim) < 1 or self.labels < 2:
            raise ConfigError(
                f"expected visual_dim, music_dim, dim >= 1 and labels >= 2; found "
                f"{self.visual_dim}, {self.music_dim}, {self.dim}, {self.labels}."
            )
        check_temperature(self.init_temperature, self.max_logit_scale)
        if self.label_weight < 0:
            raise ConfigError(f"label_weight must be >= 0; found {self.label_weight}.")


def check_temperature(init_temperature: float, max_logit_scale: float) -> None:
    if not 1.0 <= 1.0 / init_temperature <= max_logit_scale:
        raise ConfigError(
            f"expected 1 / max_logit_scale <= init_temperature <= 1; found {init_temperature} "
            f"with max_logit_scale {max_logit_scale}."
        )


@VIDEO_MUSIC_MODELS.register("semi_supervised")
class SemiSupervisedModel(VideoMusicModel):
    """Two stream encoders, two spaces, similarity controlled by α (module docstring)."""

    name = "semi_supervised"
    config_class = SemiSupervisedConfig

    def __init__(self, config: SemiSupervisedConfig) -> None:
        super().__init__(config)
        width, dim = config.stream.width, config.dim
        self.visual_stream = StreamEncoder(config.visual_dim, config.stream)
        self.music_stream = StreamEncoder(config.music_dim, config.stream)
        self.visual_self = Head([width, width, dim])
        self.music_self = Head([width, width, dim])
        self.visual_label = Head([width, width, dim])
        self.music_label = Head([width, width, dim])
        start = math.log(1.0 / config.init_temperature)
        self.self_logit_scale = nn.Parameter(torch.tensor(start))
        self.label_logit_scale = nn.Parameter(torch.tensor(start))

    def embed_visual(
        self, x: torch.Tensor, lens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, visual_dim)`` → L2-normalised ``(B, dim)`` in the self and the label space."""
        h = self.visual_stream(x, lens)
        return F.normalize(self.visual_self(h), dim=-1), F.normalize(self.visual_label(h), dim=-1)

    def embed_music(self, x: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, music_dim)`` → L2-normalised ``(B, dim)`` in the self and the label space."""
        h = self.music_stream(x, lens)
        return F.normalize(self.music_self(h), dim=-1), F.normalize(self.music_label(h), dim=-1)

    def loss(self, batch: StreamBatch) -> tuple[torch.Tensor, dict[str, float]]:
        v_self, v_label = self.embed_visual(batch.visual, batch.visual_lens)
        m_self, m_label = self.embed_music(batch.music, batch.music_lens)
        self_loss = info_nce(v_self, m_self, self.scale(self.self_logit_scale))
        label_loss = label_contrastive(
            v_label, m_label, batch.labels, self.scale(self.label_logit_scale)
        )
        total = self_loss + self.config.label_weight * label_loss
        return total, {"self": float(self_loss.detach()), "label": float(label_loss.detach())}

    @torch.inference_mode()
    def similarities(
        self, visual: StreamInput, music: StreamInput, batch_size: int = 256
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(Nv, Nm)`` cosine similarities in the self and the label space (eval mode)."""
        was = self.training
        self.eval()
        v = [self.embed_visual(x, n) for x, n in batches(visual, batch_size)]
        m = [self.embed_music(x, n) for x, n in batches(music, batch_size)]
        self.train(was)
        v_self, v_label = (torch.cat(part) for part in zip(*v, strict=True))
        m_self, m_label = (torch.cat(part) for part in zip(*m, strict=True))
        return v_self @ m_self.t(), v_label @ m_label.t()
