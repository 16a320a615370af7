"""Language-guided music retrieval for video (seed 23): a trimodal model, ``trimodal``.

After McKee, Salamon, Sivic & Russell, *Language-Guided Music Recommendation for Video via Prompt
Analogies* (CVPR 2023): a query made of a video **and** a text prompt describing the wanted music
is fused and scored against music embeddings, so the prompt steers which clips come first.

* Visual: a :class:`~echoic.objectives.video_music.StreamEncoder`'s frame tokens (projection,
  positions, the optional transformer layer), not pooled.
* Text: one prompt vector ``(B, Dt)`` from any text tower (:mod:`echoic.text`, frozen), LayerNorm
  → Linear to ``width``: one text token.
* Fusion: a learned query token, the text token and the frame tokens, each with a type embedding
  (query / text / frame), through ``fusion_layers`` pre-norm transformer layers; the query
  token's output → head → L2-normalised ``(B, dim)``.
* Text dropout (the paper's regulariser): in training each item's text token is hidden from the
  attention with probability ``text_dropout``, so the query also works from the video alone and
  the visual path is not left untrained; ``text=None`` hides it for every item.
* Music: a pooled stream encoder → head. Loss: symmetric InfoNCE of query ↔ paired music with a
  learned temperature.

Differences from the paper: prompts are templated from two score labels (metre, mode:
:func:`echoic.tasks.sheet_labels.prompt_text`), not free-form descriptions synthesised by an LLM
from a music tagger's output ("prompt analogies"); one fusion transformer over frame tokens instead
of a video transformer then fusion; the frame and text encoders are whatever the caller gives
(the benchmark: a score-image CNN and frozen MiniLM, not CLIP; music: a frozen echoic model, not
DeepSim).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from echoic.errors import ConfigError
from echoic.objectives.joint import Head
from echoic.objectives.video_music import (
    VIDEO_MUSIC_MODELS,
    StreamBatch,
    StreamConfig,
    StreamEncoder,
    StreamInput,
    VideoMusicModel,
    batches,
    check_temperature,
    info_nce,
    transformer_layer,
)

__all__ = ["TrimodalConfig", "TrimodalModel"]

QUERY, TEXT, FRAME = 0, 1, 2


@dataclass
class TrimodalConfig:
    """A :class:`TrimodalModel`: input widths (frames, music, text), the stream encoders, the
    fusion depth, the joint width ``dim``, text dropout and the temperature."""

    visual_dim: int = 128
    music_dim: int = 192
    text_dim: int = 384
    stream: StreamConfig = field(default_factory=StreamConfig)
    fusion_layers: int = 1
    dim: int = 64
    text_dropout: float = 0.5
    init_temperature: float = 0.07
    max_logit_scale: float = 100.0

    def __post_init__(self) -> None:
        if min(self.visual_dim, self.music_dim, self.text_dim, self.dim, self.fusion_layers) < 1:
            raise ConfigError(
                "expected visual_dim, music_dim, text_dim, dim, fusion_layers >= 1; found "
                f"{self.visual_dim}, {self.music_dim}, {self.text_dim}, {self.dim}, "
                f"{self.fusion_layers}."
            )
        if not 0.0 <= self.text_dropout < 1.0:
            raise ConfigError(f"text_dropout must be in [0, 1); found {self.text_dropout}.")
        check_temperature(self.init_temperature, self.max_logit_scale)


@VIDEO_MUSIC_MODELS.register("trimodal")
class TrimodalModel(VideoMusicModel):
    """Video + prompt → query; music → key; one joint space (module docstring)."""

    name = "trimodal"
    config_class = TrimodalConfig

    def __init__(self, config: TrimodalConfig) -> None:
        super().__init__(config)
        stream = config.stream
        width = stream.width
        self.visual_stream = StreamEncoder(config.visual_dim, stream)
        self.music_stream = StreamEncoder(config.music_dim, stream)
        self.text_in = nn.Sequential(
            nn.LayerNorm(config.text_dim), nn.Linear(config.text_dim, width)
        )
        self.query_token = nn.Parameter(torch.randn(width) * 0.02)
        self.types = nn.Parameter(torch.randn(3, width) * 0.02)
        self.fusion = nn.ModuleList(
            transformer_layer(width, stream.heads, stream.dropout)
            for _ in range(config.fusion_layers)
        )
        self.fusion_norm = nn.LayerNorm(width)
        self.query_head = Head([width, width, config.dim])
        self.music_head = Head([width, width, config.dim])
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / config.init_temperature)))

    def embed_query(
        self,
        visual: torch.Tensor,
        visual_lens: torch.Tensor,
        text: torch.Tensor | None,
        text_hidden: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(B, T, visual_dim)`` frames + ``(B, text_dim)`` prompts → ``(B, dim)`` queries.
        ``text_hidden`` ``(B,)`` bool hides an item's prompt; ``text=None`` hides all."""
        frames, frame_mask = self.visual_stream.tokens(visual, visual_lens)
        b, width = frames.shape[0], frames.shape[-1]
        if text is None:
            text = torch.zeros(b, self.config.text_dim, device=frames.device)
            text_hidden = torch.ones(b, dtype=torch.bool, device=frames.device)
        elif text.shape != (b, self.config.text_dim):
            raise ConfigError(
                f"expected (B={b}, {self.config.text_dim}) prompt embeddings; found "
                f"{tuple(text.shape)}. Fix: one prompt per clip, from the text tower the model "
                "was built for (text_dim)."
            )
        if text_hidden is None:
            text_hidden = torch.zeros(b, dtype=torch.bool, device=frames.device)
        query = (self.query_token + self.types[QUERY]).expand(b, 1, width)
        text_token = (self.text_in(text) + self.types[TEXT])[:, None]
        tokens = torch.cat([query, text_token, frames + self.types[FRAME]], dim=1)
        visible = torch.zeros(b, 1, dtype=torch.bool, device=frames.device)
        mask = torch.cat([visible, text_hidden[:, None], frame_mask], dim=1)
        for layer in self.fusion:
            tokens = layer(tokens, src_key_padding_mask=mask)
        return F.normalize(self.query_head(self.fusion_norm(tokens[:, 0])), dim=-1)

    def embed_music(self, music: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """``(B, T, music_dim)`` → ``(B, dim)`` L2-normalised."""
        return F.normalize(self.music_head(self.music_stream(music, lens)), dim=-1)

    def loss(self, batch: StreamBatch) -> tuple[torch.Tensor, dict[str, float]]:
        if batch.text is None:
            raise ConfigError(
                "the trimodal model trains on prompts; found a batch without text. Fix: give "
                "StreamBatch.text, one prompt embedding per clip."
            )
        hidden = torch.rand(len(batch.text), device=batch.text.device) < self.config.text_dropout
        query = self.embed_query(batch.visual, batch.visual_lens, batch.text, hidden)
        music = self.embed_music(batch.music, batch.music_lens)
        loss = info_nce(query, music, self.scale(self.logit_scale))
        return loss, {"nce": float(loss.detach()), "text_hidden": float(hidden.float().mean())}

    @torch.inference_mode()
    def similarity(
        self,
        visual: StreamInput,
        music: StreamInput,
        text: torch.Tensor | None = None,
        batch_size: int = 256,
    ) -> torch.Tensor:
        """``(Nv, Nm)`` cosines of the queries (visual row ``i`` with prompt ``text[i]``; no
        prompt when ``text`` is None) and every music clip (eval mode)."""
        was = self.training
        self.eval()
        queries = []
        for lo, (x, n) in zip(
            range(0, len(visual[0]), batch_size), batches(visual, batch_size), strict=True
        ):
            prompt = None if text is None else text[lo : lo + batch_size]
            queries.append(self.embed_query(x, n, prompt))
        keys = [self.embed_music(x, n) for x, n in batches(music, batch_size)]
        self.train(was)
        return torch.cat(queries) @ torch.cat(keys).t()
