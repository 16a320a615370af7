"""``beats_acoustic``: BEATs' acoustic tokenizer, a small transformer + l2-normed EMA codebook
trained to predict a teacher's frames (the previous iteration's encoder).

Chen et al., 2022 (BEATs), section 3.2: the tokenizer encodes the acoustic input (fbank
patches), quantises every output by the nearest codeword of an l2-normalised codebook (cosine
similarity; codewords updated by EMA, straight-through gradients to the encoder), and a small
transformer estimator predicts the teacher's last-layer output from the quantised sequence; the
loss is the cosine distance between prediction and teacher plus the commitment term. Only the
encoder and the codebook are kept for tokenizing, so the ids depend on the audio alone.

Here (all small, CPU-trainable): the inputs are any frames (e.g. a model's acoustic input stacked
per time step, ``--input features``), standardised, embedded by a linear layer plus
wav2vec-style convolutional positions, ``depth`` transformer blocks, a projection to
``codebook_dim`` and l2 normalisation; the estimator has ``estimator_depth`` blocks. Training
draws ``batch_size`` random crops of ``segment_frames`` frames per step (``steps`` AdamW steps);
tokenizing runs over windows of ``segment_frames`` frames, the length it was trained on, so a
frame's id depends on its window alone. The codebook starts from spherical k-means (faiss) of
the untrained encoder's outputs. Without targets it is trained to predict its own inputs.
Deviations from BEATs: 1-D frame tokens instead of 16×16 patches, 2 + 1 blocks of width 64
instead of 12 + 3 of 768, 1024 codes of 32 dims instead of 1024 of 256, conv positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from echoic.errors import ConfigError
from echoic.layers.attention import padding_to_attn_mask
from echoic.layers.block import Block
from echoic.layers.conv_position import ConvPositionalEmbedding
from echoic.tokenizers.base import Tokenizer, register
from echoic.tokenizers.codebooks import EMACodebook, Standardizer, faiss_kmeans, usage_stats


@dataclass
class BeatsAcousticConfig:
    dim: int = 64
    depth: int = 2
    heads: int = 2
    estimator_depth: int = 1
    codebook_size: int = 1024
    codebook_dim: int = 32
    decay: float = 0.99
    restart_after: int = 20
    commitment: float = 0.25
    position_kernel: int = 8
    segment_frames: int = 32
    batch_size: int = 16
    steps: int = 300
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    init_frames: int = 20000
    seed: int = 0


class FrameTransformer(nn.Module):
    """``(B, L, n_in)`` → ``(B, L, n_out)``: linear embedding, conv positions, blocks, norm,
    linear head."""

    def __init__(self, n_in: int, n_out: int, config: BeatsAcousticConfig, depth: int) -> None:
        super().__init__()
        self.embed = nn.Linear(n_in, config.dim)
        self.positions = ConvPositionalEmbedding(config.dim, config.position_kernel, groups=4)
        self.blocks = nn.ModuleList(Block(config.dim, config.heads) for _ in range(depth))
        self.norm = nn.LayerNorm(config.dim, eps=1e-6)
        self.head = nn.Linear(config.dim, n_out)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        keep = (~padding_mask)[..., None].to(x.dtype)
        h = self.embed(x) * keep
        h = h + self.positions(h) * keep
        mask = padding_to_attn_mask(padding_mask)
        for block in self.blocks:
            h = block(h, mask)
        return self.head(self.norm(h))


@register("beats_acoustic")
class BeatsAcousticTokenizer(Tokenizer):
    config_class = BeatsAcousticConfig
    uses_targets = True

    def __init__(
        self, input_dim: int, config: BeatsAcousticConfig, target_dim: int | None = None
    ) -> None:
        super().__init__(input_dim, config, target_dim)
        if config.dim % 4 or config.dim % config.heads or config.segment_frames < 1:
            raise ConfigError(
                "beats_acoustic needs dim divisible by 4 and by heads, and segment_frames >= 1; "
                f"found dim={config.dim}, heads={config.heads}, "
                f"segment_frames={config.segment_frames}."
            )
        self.norm = Standardizer(input_dim)
        self.target_norm = Standardizer(self.target_dim)
        self.encoder = FrameTransformer(input_dim, config.codebook_dim, config, config.depth)
        self.quantizer = EMACodebook(
            config.codebook_size,
            config.codebook_dim,
            decay=config.decay,
            cosine=True,
            restart_after=config.restart_after,
        )
        self.estimator = FrameTransformer(
            config.codebook_dim, self.target_dim, config, config.estimator_depth
        )

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        return (self.config.codebook_size,)

    def windows(
        self, frames: torch.Tensor, padding_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(b, T, D)`` → ``(b * n, L, D)`` windows of ``L = segment_frames`` and their padding."""
        b, t, d = frames.shape
        length = self.config.segment_frames
        n = max(1, -(-t // length))
        pad = n * length - t
        x = nn.functional.pad(frames, (0, 0, 0, pad))
        padding = torch.zeros(b, t, dtype=torch.bool, device=frames.device)
        if padding_mask is not None:
            padding = padding | padding_mask
        padding = nn.functional.pad(padding, (0, pad), value=True)
        return x.reshape(b * n, length, d), padding.reshape(b * n, length)

    def latents(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """l2-normalised encoder outputs ``(B, L, codebook_dim)`` of standardised windows."""
        return nn.functional.normalize(self.encoder(x, padding), dim=-1)

    def encode(self, frames: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        b, t, _ = frames.shape
        x, padding = self.windows(self.norm(frames), padding_mask)
        z = self.latents(x, padding)
        ids = self.quantizer.assign(z.reshape(-1, z.shape[-1]))
        return ids.reshape(b, -1)[:, :t, None]

    def fit(
        self, inputs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor] | None = None
    ) -> dict[str, float]:
        xs, ys = self.check_fit_data(inputs, targets)
        if ys is None:
            if self.target_dim != self.input_dim:
                raise ConfigError(
                    f"beats_acoustic was built for targets of {self.target_dim} values; pass "
                    "the teacher's frames as targets."
                )
            ys = xs
        c = self.config
        generator = torch.Generator().manual_seed(int(c.seed))
        self.norm.fit(torch.cat(xs))
        self.target_norm.fit(torch.cat(ys))
        raw = xs
        xs = [self.norm(x) for x in raw]
        ys = [self.target_norm(y) for y in ys]
        self._init_codebook(xs, generator)
        optimiser = torch.optim.AdamW(
            [p for p in self.parameters() if p.requires_grad],
            lr=c.learning_rate,
            weight_decay=c.weight_decay,
        )
        self.train()
        losses = []
        for _ in range(c.steps):
            x, y, padding = self._crops(xs, ys, generator)
            loss = self._step_loss(x, y, padding, generator)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
        self.eval()
        self.fitted.fill_(True)
        ids = torch.cat([self(x[None])[0, :, 0] for x in raw])
        used, perplexity = usage_stats(ids, c.codebook_size)
        tail = losses[-max(1, len(losses) // 10) :]
        return self.finish_fit(
            {
                "frames": float(ids.numel()),
                "steps": float(c.steps),
                "final_loss": sum(tail) / len(tail),
                "codes_used": used,
                "perplexity": perplexity,
            }
        )

    def _step_loss(
        self, x: torch.Tensor, y: torch.Tensor, padding: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        z = self.latents(x, padding)
        valid = ~padding
        flat = z[valid]
        ids = self.quantizer.assign(flat)
        quantised = self.quantizer.lookup(ids)
        commitment = (flat - quantised.detach()).square().sum(-1).mean()
        self.quantizer.ema_update(flat, ids, generator)
        straight = torch.zeros_like(z)
        straight[valid] = flat + (quantised - flat).detach()
        prediction = self.estimator(straight, padding)[valid]
        cosine = nn.functional.cosine_similarity(prediction, y[valid], dim=-1)
        return (1.0 - cosine).mean() + self.config.commitment * commitment

    def _crops(
        self, xs: list[torch.Tensor], ys: list[torch.Tensor], generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c = self.config
        length = c.segment_frames
        x = torch.zeros(c.batch_size, length, self.input_dim)
        y = torch.zeros(c.batch_size, length, self.target_dim)
        padding = torch.ones(c.batch_size, length, dtype=torch.bool)
        picks = torch.randint(0, len(xs), (c.batch_size,), generator=generator)
        for row, clip in enumerate(picks.tolist()):
            t = xs[clip].shape[0]
            start = int(torch.randint(0, max(1, t - length + 1), (1,), generator=generator))
            n = min(length, t - start)
            x[row, :n] = xs[clip][start : start + n]
            y[row, :n] = ys[clip][start : start + n]
            padding[row, :n] = False
        return x, y, padding

    @torch.no_grad()
    def _init_codebook(self, xs: list[torch.Tensor], generator: torch.Generator) -> None:
        latents = []
        for x in xs:
            windows, padding = self.windows(x[None], None)
            latents.append(self.latents(windows, padding)[~padding])
        z = torch.cat(latents)
        z = z[torch.randperm(z.shape[0], generator=generator)[: self.config.init_frames]]
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        k = min(self.config.codebook_size, z.shape[0])
        centroids = faiss_kmeans(z, k, 20, seed, spherical=True)
        if k < self.config.codebook_size:  # fewer frames than codes: the rest on random frames
            extra = z[
                torch.randint(0, z.shape[0], (self.config.codebook_size - k,), generator=generator)
            ]
            centroids = torch.cat([centroids, extra])
        self.quantizer.set_codebook(centroids)
