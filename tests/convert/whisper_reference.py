"""The Whisper reference: transformers' ``WhisperModel`` / ``WhisperFeatureExtractor`` with a tiny
random config, saved with ``save_pretrained``; its encoder layers in echoic's convention."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import torch

WINDOW_S = 4
"""The tiny model's input window: 200 positions = 400 frames = 4 s (Whisper's is 30 s)."""
TINY: dict[str, Any] = {
    "d_model": 64,
    "encoder_layers": 3,
    "encoder_attention_heads": 4,
    "encoder_ffn_dim": 256,
    "num_mel_bins": 80,
    "max_source_positions": 100 * WINDOW_S // 2,
    "decoder_layers": 1,
    "decoder_attention_heads": 4,
    "decoder_ffn_dim": 128,
    "vocab_size": 96,
    "max_target_positions": 16,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "decoder_start_token_id": 3,
    "suppress_tokens": [],
    "begin_suppress_tokens": [],
}
"""Whisper's structure (two convolutions, pre-LN blocks, 4x MLP, sinusoidal table) at width 64."""


def make_whisper(
    transformers: ModuleType, model_class: str = "WhisperModel", seed: int = 0, **fields: Any
) -> Any:
    """A random tiny Whisper of ``model_class``, every parameter perturbed except the (frozen,
    sinusoidal) position tables, in eval mode."""
    config = transformers.WhisperConfig(**{**TINY, **fields})
    torch.manual_seed(seed)
    model = getattr(transformers, model_class)(config)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "embed_positions" in name:
                continue
            spread = float(parameter.std()) if parameter.numel() > 1 else 0.0
            noise = torch.randn(parameter.shape, generator=generator)
            parameter.add_(noise * 0.1 * (spread if spread > 0 else 1.0))
    return model.eval()


def extractor(transformers: ModuleType, n_mels: int = 80, window_s: int = WINDOW_S) -> Any:
    return transformers.WhisperFeatureExtractor(feature_size=n_mels, chunk_length=window_s)


def whisper_features(feature_extractor: Any, wave: np.ndarray) -> torch.Tensor:
    """``(1, n_mels, frames)`` of Whisper's feature extractor (the clip padded to its window)."""
    out = feature_extractor(wave, sampling_rate=16000, return_tensors="pt")
    return out.input_features


def encoder_layers(encoder: Any, features: torch.Tensor) -> list[torch.Tensor]:
    """transformers ``WhisperEncoder`` layers in echoic's convention: ``hidden_states[:-1]`` (the
    convolutions + positions, then blocks 1 … depth - 1) and ``last_hidden_state`` (block ``depth``
    after the final LayerNorm)."""
    with torch.no_grad():
        out = encoder(features, output_hidden_states=True)
    return [*out.hidden_states[:-1], out.last_hidden_state]
