"""data2vec 2.0 on the waveform (``data2vec2``): Baevski et al. 2023, the audio recipe.

The EAT machinery (:mod:`echoic.objectives.eat`, which descends from data2vec 2.0) with data2vec
2.0's audio settings and data flow, on an encoder of 1-D frame tokens (the waveform encoder
``wav_*``):

* the student's convolutional front end turns each clip into local features **once**; the
  ``clone_batch`` (8) masked copies of a clip are made from these features, not from the waveform
  (fairseq: clones after the local encoder);
* the EMA teacher runs its positions and blocks on those local features of the full clip
  (fairseq's ``ema_local_encoder: false``: the teacher has no front end of its own); its targets
  are the average of its top ``average_top_k_layers`` (8) block outputs, each
  instance-normalised over time per channel, without a final layer norm;
* each clone's hidden frames are zeroed before the encoder's positions are added (fairseq's
  ``encoder_zero_mask``: a convolutional position embedding sees no hidden frame), then only the
  visible frames enter the blocks (token dropping); the masks hide ``mask_ratio`` (50 %) of the frames in
  spans of 5 (``inverse_block`` sampler with ``block=(1, 5)``, ``inverse=False``: 0.55 of the
  frames' worth of span centres are drawn, then the count is made exact — fairseq's
  ``compute_block_mask_1d`` with ``mask_prob=0.5, mask_length=5, mask_prob_adjust=0.05``);
* a 1-D CNN decoder (4 grouped convolutions of kernel 7 over time, width 384, 16 groups; each
  ``conv → LayerNorm → GELU`` with a residual) fills hidden frames with N(0, 0.01²) noise and
  regresses the teacher targets at the hidden frames; the loss is their mean squared error.
  There is no utterance (CLS) loss: that is EAT's addition.

Defaults follow fairseq's ``base_audio_only_task.yaml`` (LibriSpeech 960 h, ViT-B-sized
post-LN encoder with data2vec audio's 5-layer convolutional positions): EMA 0.999 → 0.99999 over
75k updates, Adam lr 7.5e-4, betas (0.9, 0.98), weight decay 0.01, 8k warm-up of 400k updates,
layer drop 0.05. Recipes: ``configs/pretrain/data2vec2_{test,tiny}.yaml``.

Differences from fairseq: no ALiBi attention bias (data2vec 2.0 audio adds a learned one per head;
the encoder's convolutional positions are its only position signal); no decoder input dropout
(0.1) and no layer drop; the teacher's EMA copy includes a front end it never runs; targets are
the teacher's block outputs (the last after the final LayerNorm of a pre-LN encoder) rather than
the pre-residual FFN outputs of post-LN blocks; the
loss is a plain mean of squared errors (fairseq sums over channels and scales by ``1/sqrt(D)``,
i.e. ``sqrt(D)`` times this loss); the exact mask count is ``round`` rather than ``int``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from echoic.encoders.base import EncoderSpec
from echoic.errors import ConfigError
from echoic.layers import gather_tokens
from echoic.objectives.base import register, require_keep_idx
from echoic.objectives.eat import EATConfig, EATObjective, clone_rows, layer_targets
from echoic.types import ObjectiveOutput, TrainBatch

__all__ = ["Data2Vec2Config", "Data2Vec2Objective"]


@dataclass
class Data2Vec2Config(EATConfig):
    """Settings of :class:`Data2Vec2Objective` (data2vec 2.0 audio defaults); the fields are
    :class:`~echoic.objectives.eat.EATConfig`'s."""

    method: ClassVar[str] = "data2vec2"

    clone_batch: int = 8
    mask: str = "inverse_block"
    mask_ratio: float = 0.5
    mask_options: dict[str, Any] = field(
        default_factory=lambda: {"block": [1, 5], "adjust": 0.05, "inverse": False}
    )
    average_top_k_layers: int = 8
    instance_norm_target_layer: bool = True
    layer_norm_targets: bool = False
    ema_decay: float = 0.999
    ema_end_decay: float = 0.99999
    ema_anneal_end_step: int = 75_000
    decoder_dim: int = 384
    decoder_layers: int = 4
    decoder_kernel: int = 7
    decoder_groups: int = 16
    mask_noise_std: float = 0.01
    frame_loss_weight: float = 1.0
    utterance_loss_weight: float = 0.0


@register("data2vec2")
class Data2Vec2Objective(EATObjective):
    """EMA teacher on the full clip once; ``clone_batch`` span-masked students, 1-D CNN decoder."""

    config_class = Data2Vec2Config

    @classmethod
    def check_encoder(cls, spec: EncoderSpec) -> None:
        require_keep_idx("data2vec2", spec)
        if spec.layout != "frames":
            raise ConfigError(
                "data2vec2 is data2vec 2.0's audio recipe on a 1-D sequence of frame tokens (its "
                "decoder convolves over time only); this encoder has 2-D patches. Use a waveform "
                "encoder (wav_test, wav_tiny) or, for spectrogram patches, the eat objective."
            )

    def decoder_kernel_size(self, kernel: int) -> tuple[int, int]:
        """data2vec 2.0's audio decoder convolves over time only."""
        return (1, kernel)

    def forward(self, batch_in: TrainBatch, generator: torch.Generator) -> ObjectiveOutput:
        """Front end once per clip; teacher on its full features; clones on the kept frames."""
        c = self.config
        features = batch_in.features
        local, pad, grid = self.encoder.embed_tokens(features, add_positions=False)  # (B, T, D)
        with torch.no_grad():
            self.ema.eval()
            full = self.ema.add_positions(local.detach(), grid, pad)
            layers = self.ema.forward_tokens(full, pad, features).layers
            k = min(c.average_top_k_layers, len(layers) - 1)
            target = layer_targets(layers[-k:], c.instance_norm_target_layer, c.layer_norm_targets)

        student_in = clone_rows(features, c.clone_batch)
        sample = self.masker(student_in.values.shape[0], grid, generator)
        keep_idx = sample.keep_idx.to(local.device)
        local = local.repeat_interleave(c.clone_batch, dim=0)  # (rows, T, D)
        pad = pad.repeat_interleave(c.clone_batch, dim=0)
        hidden = pad | sample.masked.to(local.device)  # zeroed before the positions
        tokens = self.encoder.add_positions(local.masked_fill(hidden[..., None], 0.0), grid, hidden)
        kept_pad = torch.gather(pad, 1, keep_idx)
        out = self.encoder.forward_tokens(
            gather_tokens(tokens, keep_idx), kept_pad, student_in, keep_idx
        )
        return self.regress(out.last, out.cls_layers, target, sample, student_in, grid, generator)
