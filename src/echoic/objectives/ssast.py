"""Self-supervised AST (``ssast``): Gong et al. 2022, joint discriminative + generative pretraining.

Every token enters the encoder (BEiT-style): hidden patches are replaced by one learned mask
embedding before the 2-D positions are added. On the encoder's output at hidden positions, two
MLP heads predict the patch: a masked patch classification (MPC) head scored with InfoNCE — within
each clip, the prediction for hidden patch ``i`` must pick patch ``i``'s pixels among all hidden
patches of the clip — and a masked patch generation (MPG) head regressing the pixels (MSE).
``loss = mpc_weight * InfoNCE + mpg_weight * MSE``.

Defaults follow the paper: clustered masking of 400 of 512 patches (``mask_ratio = 400/512``,
cluster sides 3–5), MPG weight 10, and — as in SSAST's joint training loop — **two encoder passes
per clip with independent masks**, one per task (``shared_pass=True`` computes both heads on one
pass, halving the cost). SSAST trained with Adam (betas (0.95, 0.999), weight decay 5e-7, lr 1e-4
halved on a step schedule); ``configs/pretrain/ssast_base.yaml`` uses AdamW + cosine instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from echoic.encoders.base import Encoder
from echoic.layers import gather_tokens
from echoic.masking import build_masker
from echoic.objectives.base import Objective, masked_mean, register, token_padding
from echoic.types import Features, ObjectiveOutput, TrainBatch

__all__ = ["SSASTConfig", "SSASTObjective", "info_nce"]


@dataclass
class SSASTConfig:
    """Settings of :class:`SSASTObjective` (SSAST defaults)."""

    mask: str = "cluster"
    mask_ratio: float = 400 / 512
    mask_options: dict[str, Any] = field(default_factory=dict)
    mpc_weight: float = 1.0
    mpg_weight: float = 10.0
    shared_pass: bool = False


def info_nce(
    pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """SSAST's masked-patch InfoNCE within each clip.

    pred, target: ``(B, M, P)``; valid: ``(B, M)`` bool. Scores ``s[b, i, j] = target_i · pred_j``;
    row ``i`` is a softmax classification whose answer is ``j = i``. Invalid (padding) patches are
    neither answers nor distractors. Returns ``(loss, accuracy)``: mean over valid rows of the
    cross-entropy, and the fraction of valid rows whose best-scoring prediction is their own.
    """
    scores = torch.bmm(target, pred.transpose(1, 2)).float()  # (B, M, M)
    n = scores.shape[1]
    eye = torch.eye(n, dtype=torch.bool, device=scores.device)
    hidden = (~valid)[:, None, :] & ~eye  # never hide the diagonal: each row stays finite
    scores = scores.masked_fill(hidden, float("-inf"))
    log_prob = scores.log_softmax(dim=-1)
    own = torch.diagonal(log_prob, dim1=1, dim2=2)  # (B, M)
    loss = masked_mean(-own, valid)
    correct = scores.argmax(dim=-1) == torch.arange(n, device=scores.device)
    accuracy = masked_mean(correct.float(), valid)
    return loss, accuracy


def _head(dim: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, out))


@register("ssast")
class SSASTObjective(Objective):
    """All tokens (hidden ones as a mask embedding) → encoder → MPC + MPG heads."""

    config_class = SSASTConfig

    def __init__(self, encoder: Encoder, config: SSASTConfig) -> None:
        super().__init__(encoder, config)
        spec = encoder.spec
        dim = spec.width
        pixels = spec.token_input_size
        self.masker = build_masker(config.mask, mask_ratio=config.mask_ratio, **config.mask_options)
        self.mask_embedding = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.xavier_normal_(self.mask_embedding)
        self.mpc_head = _head(dim, pixels)
        self.mpg_head = _head(dim, pixels)

    def encode_masked(
        self, features: Features, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode with fresh masks. Returns hidden-token outputs ``(B, M, D)`` and their grid
        indices ``masked_idx`` ``(B, M)``."""
        batch = features.values.shape[0]
        grid = self.encoder.grid(features.n_frames)
        sample = self.masker(batch, grid, generator)
        device = features.values.device
        masked = sample.masked.to(device)
        masked_idx = sample.masked_idx.to(device)
        tokens, pad, grid = self.encoder.embed_tokens(features, add_positions=False)
        tokens = torch.where(masked[..., None], self.mask_embedding.to(tokens.dtype), tokens)
        tokens = self.encoder.add_positions(tokens, grid, pad)
        out = self.encoder.forward_tokens(tokens, pad, features)
        return gather_tokens(out.last, masked_idx), masked_idx

    def forward(self, batch: TrainBatch, generator: torch.Generator) -> ObjectiveOutput:
        """Loss: ``mpc_weight * InfoNCE + mpg_weight * MSE`` on the hidden tokens' input values."""
        features = batch.features
        target_all = self.encoder.token_targets(features)  # (B, N, P)
        padding = token_padding(features, self.encoder)

        hidden_c, idx_c = self.encode_masked(features, generator)
        if self.config.shared_pass:
            hidden_g, idx_g = hidden_c, idx_c
        else:
            hidden_g, idx_g = self.encode_masked(features, generator)

        valid_c = ~torch.gather(padding, 1, idx_c)
        nce, accuracy = info_nce(
            self.mpc_head(hidden_c).float(), gather_tokens(target_all, idx_c).float(), valid_c
        )
        valid_g = ~torch.gather(padding, 1, idx_g)
        error = (self.mpg_head(hidden_g).float() - gather_tokens(target_all, idx_g).float()) ** 2
        mse = masked_mean(error.mean(dim=-1), valid_g)
        loss = self.config.mpc_weight * nce + self.config.mpg_weight * mse
        return ObjectiveOutput(
            loss=loss,
            logs={
                "mpc_nce": float(nce.detach()),
                "mpc_accuracy": float(accuracy),
                "mpg_mse": float(mse.detach()),
            },
        )
