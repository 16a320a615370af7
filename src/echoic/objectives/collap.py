"""CoLLAP: contrastive long-form language–audio pretraining (Wu et al. 2025).

A long crop is cut along time into ``K`` equal chunks of ``chunk_s`` seconds (``K =
crop frames // chunk frames``, at least 1; the remainder frames are dropped). Every chunk goes
through the audio encoder and the pooling on its own; each pooled vector through ``clap``'s audio
head gives a chunk embedding ``c_k``. The clip's *global* embedding ``g`` is the audio head of the
chunks' mean pooled vector — what the exported model's ``embed_audio`` computes (up to how it sizes chunks) for a clip
longer than ``chunk_s`` (:class:`~echoic.objectives.joint.JointModel`), so the export is
text-independent.

Fusion against a caption's embedding ``t`` (CoLLAP's attention over clip embeddings): a query
``W_q t`` and keys ``W_k c_k`` give weights ``w_k = softmax_k(q · k_k / √d)`` over the chunks (they
sum to 1 and depend on the text); the fused audio vector for that caption is
``normalize(g + Σ_k w_k c_k)`` and its score ``exp(t_scale) · fused · t``. Each audio × caption pair
of the batch is fused with its own weights, so the ``B × B`` logits are a symmetric InfoNCE as in
``clap`` (learned temperature, identical captions not negatives).

The text-conditioned score of an exported model: :func:`load_fusion` reads the query / key
projections (``collap_fusion.safetensors``) and :meth:`ChunkFusion.scores` scores chunk embeddings
against caption embeddings (``JointModel.embed_text``); ``echoic eval --protocol textretrieval
--fusion`` ranks with it.

``fusion: false`` is the baseline CoLLAP compares against: ``clap``'s InfoNCE on the
text-independent ``g`` alone (the mean-pooled chunks of the same long crops, no attention); its
export has no fusion file.

Differences from the paper: no long-form caption generation (captions are the corpus's);
the encoder is any echoic encoder trained from scratch on ``data.crop_s`` crops, or a pretrained
one frozen (``model.init`` + ``model.freeze_encoder``: CoLLAP's frozen backbones,
``benchmarks/collap_long.py``; CoLLAP uses up to 5-minute songs); one attention head; chunks do not
overlap and carry no position.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from echoic.encoders.base import Encoder
from echoic.errors import ConfigError
from echoic.objectives.audio_text import pair_top1, symmetric_cross_entropy
from echoic.objectives.base import register
from echoic.objectives.byol_a import collapse_metrics
from echoic.objectives.clap import ClapObjective, ClapObjectiveConfig, same_caption
from echoic.types import Features, ObjectiveOutput, TrainBatch

__all__ = [
    "FUSION_FILE",
    "ChunkFusion",
    "CollapConfig",
    "CollapObjective",
    "load_fusion",
    "split_chunks",
]

FUSION_FILE = "collap_fusion.safetensors"


@dataclass
class CollapConfig(ClapObjectiveConfig):
    """Settings of :class:`CollapObjective` (and ``clap``'s). ``chunk_s`` (seconds per chunk,
    shared with the export) sets ``K``; attention_dim: width of the query / key projections;
    fusion: False trains on the mean-pooled chunks ``g`` only (the baseline, no attention)."""

    chunk_s: float = 1.0
    attention_dim: int = 64
    fusion: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.attention_dim < 1:
            raise ConfigError(f"collap attention_dim must be >= 1; found {self.attention_dim}.")


def split_chunks(features: Features, chunk_s: float) -> tuple[Features, torch.Tensor]:
    """Cut ``(B, ..., T)`` features into ``K`` chunks of ``round(chunk_s / hop_s)`` frames:
    ``(B·K, ..., n)`` features (clip-major) and a ``(B, K)`` bool of the chunks that hold valid
    frames (the first always does)."""
    values, lengths = features.values, features.lengths
    total = int(values.shape[-1])
    size = min(total, max(1, round(chunk_s / features.hop_s)))
    count = max(1, total // size)
    batch = int(values.shape[0])
    chunks = values[..., : count * size].unflatten(-1, (count, size)).movedim(-2, 1)
    starts = torch.arange(count, device=lengths.device) * size
    chunk_lengths = (lengths[:, None] - starts[None, :]).clamp(0, size)
    valid = chunk_lengths > 0
    valid[:, 0] = True
    flat = Features(
        chunks.reshape(batch * count, *chunks.shape[2:]),
        chunk_lengths.clamp_min(1).reshape(-1),
        features.hop_s,
        features.first_centre_s,
    )
    return flat, valid


class ChunkFusion(nn.Module):
    """Text-conditioned attention over chunk embeddings (module docstring)."""

    def __init__(self, dim: int, attention_dim: int) -> None:
        super().__init__()
        self.query = nn.Linear(dim, attention_dim)
        self.key = nn.Linear(dim, attention_dim)
        self.spec = {"dim": int(dim), "attention_dim": int(attention_dim)}

    def weights(
        self, chunks: torch.Tensor, valid: torch.Tensor, text: torch.Tensor
    ) -> torch.Tensor:
        """``(A, T, K)`` softmax weights of ``A`` clips' ``(A, K, D)`` chunk embeddings (``valid``
        ``(A, K)``) for each of ``T`` ``(T, D)`` caption embeddings; each row sums to 1."""
        q, k = self.query(text), self.key(chunks)
        logits = torch.einsum("td,akd->atk", q, k) / math.sqrt(q.shape[-1])
        logits = logits.masked_fill(~valid[:, None, :], float("-inf"))
        return logits.float().softmax(-1)

    def fused(
        self, chunks: torch.Tensor, valid: torch.Tensor, glob: torch.Tensor, text: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(A, T, D)`` L2-normalised fused audio vectors ``g + Σ_k w_k c_k`` and the weights."""
        w = self.weights(chunks, valid, text)
        attended = torch.einsum("atk,akd->atd", w, chunks.float())
        return F.normalize(glob.float()[:, None, :] + attended, dim=-1), w

    def scores(
        self, chunks: torch.Tensor, valid: torch.Tensor, glob: torch.Tensor, text: torch.Tensor
    ) -> torch.Tensor:
        """``(A, T)`` cosine of each clip's text-fused vector with each caption (``text``
        L2-normalised ``(T, D)``): CoLLAP's retrieval score, before the temperature."""
        fused, _ = self.fused(chunks, valid, glob, text)
        return (fused * text.float()[None]).sum(-1)


def load_fusion(directory: str | os.PathLike[str]) -> ChunkFusion:
    """The :class:`ChunkFusion` a ``collap`` export saved beside its joint model."""
    path = Path(directory) / FUSION_FILE
    if not path.is_file():
        raise ConfigError(
            f"{directory}: no {FUSION_FILE}; the text-conditioned fusion exists for models "
            "exported by collap with fusion: true only. Score this model without fusion."
        )
    state = load_file(str(path))
    dim, attention_dim = state["key.weight"].shape[1], state["key.weight"].shape[0]
    fusion = ChunkFusion(int(dim), int(attention_dim))
    fusion.load_state_dict(state)
    return fusion.eval()


@register("collap")
class CollapObjective(ClapObjective):
    """``clap`` over text-fused chunk embeddings of a long crop (module docstring)."""

    config_class = CollapConfig

    def __init__(self, encoder: Encoder, config: CollapConfig) -> None:
        super().__init__(encoder, config)
        self.fusion: ChunkFusion | None = (
            ChunkFusion(config.dim, config.attention_dim) if config.fusion else None
        )

    def chunk_embeddings(
        self, features: Features
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(B, K, D)`` normalised chunk embeddings, their ``(B, K)`` validity and the ``(B, D)``
        normalised global embedding (head of the valid chunks' mean pooled vector). Without
        fusion the chunk embeddings are not computed (zeros)."""
        flat, valid = split_chunks(features, self.config.chunk_s)
        batch, count = valid.shape
        pooled = self.pooled(self.encoder(flat))  # (B·K, W)
        weight = valid.to(pooled.dtype).reshape(-1, 1)
        mean = (pooled * weight).unflatten(0, (batch, count)).sum(1) / weight.unflatten(
            0, (batch, count)
        ).sum(1)
        if self.fusion is None:  # the baseline reads g only (a batch-norm head sees clips only)
            glob = F.normalize(self.audio_head(mean).float(), dim=-1)
            return torch.zeros(batch, count, glob.shape[-1], device=glob.device), valid, glob
        rows = self.audio_head(torch.cat([pooled, mean])).float()  # one call: one batch's stats
        chunks = F.normalize(rows[: batch * count], dim=-1).unflatten(0, (batch, count))
        glob = F.normalize(rows[batch * count :], dim=-1)
        return chunks, valid, glob

    def forward(self, batch: TrainBatch, generator: torch.Generator) -> ObjectiveOutput:
        tokens = self.tokens(batch)
        chunks, valid, glob = self.chunk_embeddings(self.audio_input(batch, generator))
        text = F.normalize(
            self.text_head(self.text_vectors(self.text_tower, tokens)).float(), dim=-1
        )
        scale = self.scale()
        weights = None
        if self.fusion is None:  # the mean-pooled-chunks baseline: clap on g
            logits = scale * glob @ text.t()
        else:
            fused, weights = self.fusion.fused(chunks, valid, glob, text)
            logits = scale * (fused * text[None]).sum(-1)
        same = (
            same_caption(tokens.input_ids, tokens.padding_mask)
            if self.config.mask_same_captions
            else None
        )
        loss = symmetric_cross_entropy(logits, same)
        with torch.no_grad():
            accuracy = pair_top1(logits)
            a_std, a_rank = collapse_metrics(glob)
            logs = {
                "collap_loss": float(loss.detach()),
                "logit_scale": float(scale.detach()),
                "audio_to_text_top1": accuracy,
                "chunks": float(valid.shape[1]),
                "audio_std": a_std,
                "audio_rank": a_rank,
            }
            if weights is not None:
                target = torch.arange(len(text), device=text.device)
                paired = weights[target, target]  # (B, K): each clip's weights, own caption
                entropy = -(paired * paired.clamp_min(1e-12).log()).sum(-1).mean()
                logs["attention_entropy"] = float(entropy)
        return ObjectiveOutput(loss=loss, logs=logs)

    def save_beside_model(self, directory: Path) -> list[str]:
        names = super().save_beside_model(directory)
        if self.fusion is None:
            return names
        state = {k: v.detach().contiguous().cpu() for k, v in self.fusion.state_dict().items()}
        save_file(state, Path(directory) / FUSION_FILE)
        return [*names, FUSION_FILE]

    def joint_heads(self) -> tuple[nn.Sequential, nn.Sequential, dict[str, Any]]:
        audio, text, extra = super().joint_heads()
        if self.fusion is None:
            return audio, text, extra
        return audio, text, {**extra, "fusion": FUSION_FILE, **self.fusion.spec}
