"""Tiny random reference models of each converted family, and per-layer comparisons."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import torch

from echoic.types import AudioBatch, EncoderOutput, Features

SMALL: dict[str, Any] = {
    "hidden_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "conv_dim": (64,) * 7,
    "num_conv_pos_embedding_groups": 16,
}
"""A tiny size with the published structure (7 conv layers, 128-tap positions in 16 groups)."""
STABLE = {"do_stable_layer_norm": True, "feat_extract_norm": "layer", "conv_bias": True}

HF_CASES: dict[str, tuple[str, str, dict[str, Any]]] = {
    # case: (config class, model class, config fields beyond SMALL)
    "wav2vec2": ("Wav2Vec2Config", "Wav2Vec2Model", {}),
    "wav2vec2-stable": ("Wav2Vec2Config", "Wav2Vec2Model", STABLE),
    "hubert": ("HubertConfig", "HubertModel", {}),
    "wavlm": ("WavLMConfig", "WavLMModel", {}),
    "wavlm-stable": ("WavLMConfig", "WavLMModel", {**STABLE, "conv_bias": False}),
    "data2vec-audio": ("Data2VecAudioConfig", "Data2VecAudioModel", {"conv_pos_kernel_size": 19}),
}
"""wav2vec 2.0 base layout (group norm, post-LN) and large "stable layer norm" layout, HuBERT,
WavLM (both layouts; gated relative position bias, 320 buckets up to 800 frames), data2vec audio."""


def make_hf_model(transformers: ModuleType, case: str, seed: int = 0, **fields: Any) -> Any:
    """The reference model of ``case`` with random weights (fixed seed), in eval mode.

    Every parameter is perturbed after initialisation: transformers starts LayerNorms at 1 / 0 and
    several biases at 0, which would hide a swapped norm or a dropped bias in the mapping.
    """
    config_name, model_name, extra = HF_CASES[case]
    config = getattr(transformers, config_name)(**{**SMALL, **extra, **fields})
    torch.manual_seed(seed)
    model = getattr(transformers, model_name)(config)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for parameter in model.parameters():
            spread = float(parameter.std()) if parameter.numel() > 1 else 0.0
            noise = torch.randn(parameter.shape, generator=generator)
            parameter.add_(noise * 0.1 * (spread if spread > 0 else 1.0))
    return model.eval()


def reference_layers(model: Any, wave: torch.Tensor, **kwargs: Any) -> list[torch.Tensor]:
    """The reference's layers in echoic's convention (``EncoderOutput.layers``).

    echoic layer ``i < depth`` = transformers ``hidden_states[i]`` (0: the projected features plus
    positions — after the encoder LayerNorm in post-LN models — then each block's output); echoic
    layer ``depth`` = ``last_hidden_state`` (after the final LayerNorm in "stable layer norm"
    models; transformers 5's ``hidden_states[depth]`` is the last block before that norm).
    """
    with torch.no_grad():
        out = model(wave, output_hidden_states=True, **kwargs)
    hidden = list(out.hidden_states)
    return [*hidden[:-1], out.last_hidden_state]


def layer_diffs(ours: list[torch.Tensor], reference: list[torch.Tensor]) -> list[float]:
    """max |ours - reference| per layer (same shapes required)."""
    assert len(ours) == len(reference), (len(ours), len(reference))
    diffs = []
    for a, b in zip(ours, reference, strict=True):
        assert a.shape == b.shape, (a.shape, b.shape)
        diffs.append(float((a - b).abs().max()))
    return diffs


def run_on_features(
    model: Any, wave: torch.Tensor, features: torch.Tensor
) -> tuple[EncoderOutput, EncoderOutput, torch.Tensor]:
    """A 16 kHz model's encoder on a reference's ``(T, F)`` features (10 ms hop), the model on
    ``wave`` ``(S,)``, and its own features ``(F, T)`` of ``wave``."""
    batch = AudioBatch(wave[None], torch.tensor([len(wave)]), 16000)
    given = Features(features.T[None].contiguous(), torch.tensor([len(features)]), 0.01, 0.0)
    with torch.no_grad():
        return model.encoder(given), model(batch), model.frontend(batch).values[0]


def assert_batch_invariant(model: Any, clips: dict[str, np.ndarray]) -> None:
    """A short 16 kHz clip padded in a batch beside a long one gives, on its own tokens, every
    layer it gives alone (within 1e-5)."""
    short, long = torch.from_numpy(clips["body_percussion"]), torch.from_numpy(clips["esc50"])
    wave = torch.zeros(2, len(long))
    wave[0], wave[1, : len(short)] = long, short
    with torch.no_grad():
        both = model(AudioBatch(wave, torch.tensor([len(long), len(short)]), 16000))
        alone = model(AudioBatch(short[None], torch.tensor([len(short)]), 16000))
    n = alone.last.shape[1]
    for a, b in zip(alone.layers, both.layers, strict=True):
        torch.testing.assert_close(a[0], b[1, :n], atol=1e-5, rtol=0)
