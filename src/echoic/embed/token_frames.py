"""The frames a tokenizer reads from audio through an echoic model, for fitting and tokenizing.

A :class:`FrameSource` turns clips into one frame per encoder time step of a model:

* ``input="layer"`` (default): the model's frames at ``layer`` (the Embedder's native frames:
  chunked, stitched, pooled over frequency as the model's embed settings say) — k-means, RVQ and
  MVQ over a model's features (HuBERT iteration ≥ 1, SPEAR, UNFUSED);
* ``input="features"``: the model's acoustic input of each time step, flattened
  (:func:`echoic.tokenizers.frames.stacked_frames`) — BEATs' acoustic tokenizer, a codec;
* ``input="mfcc"``: 39 MFCC + Δ + ΔΔ values per time step from the model's log-mel frontend
  (:func:`echoic.tokenizers.frames.mfcc_frames`) — HuBERT's iteration 0.

``with_targets=True`` also returns the layer frames (a teacher's) of every clip, aligned with the
inputs, for tokenizers that learn to predict them (``beats_acoustic``). Frame ``t`` of a clip is
centred at ``first_ms + t * hop_ms`` (the encoder's token→time map).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from echoic.checkpoint import DEFAULT_MODEL, EchoicModel
from echoic.data.audio import prepare_audio
from echoic.embed.embedder import Embedder, LayerChoice
from echoic.errors import ConfigError
from echoic.tokenizers.frames import mfcc_frames, stacked_frames
from echoic.types import AudioBatch

__all__ = [
    "INPUT_KINDS",
    "ClipFrames",
    "FitFrames",
    "FrameSource",
    "gather_frames",
    "recorded_source",
]

INPUT_KINDS = ("layer", "features", "mfcc")


@dataclass
class ClipFrames:
    """One clip's frames: ``inputs`` ``(T, D)`` float32, ``targets`` ``(T, D_t)`` or None."""

    inputs: torch.Tensor
    targets: torch.Tensor | None
    first_ms: float
    hop_ms: float


class FrameSource:
    """Frames of clips from an echoic model (see module docstring). ``embed``: further
    :class:`~echoic.embed.embedder.EmbedConfig` fields for the layer frames (``chunk_s``...)."""

    def __init__(
        self,
        model: EchoicModel | str = DEFAULT_MODEL,
        layer: LayerChoice | None = None,
        input: str = "layer",
        with_targets: bool = False,
        **embed: Any,
    ) -> None:
        if input not in INPUT_KINDS:
            raise ConfigError(f"input must be one of {INPUT_KINDS}; found {input!r}.")
        options = dict(embed)
        if layer is not None:
            options["layer"] = layer
        self.embedder = Embedder(model, **options)
        self.model_ref = model if isinstance(model, str) else (model.config.name or "")
        self.input = input
        self.with_targets = with_targets
        self.model = self.embedder.model
        spec = self.model.encoder.spec
        if input != "layer" and (spec.input != "features" or self.embedder.channels != 1):
            raise ConfigError(
                f"input={input!r} reads a mono spectral frontend; model {self.embedder.label!r} "
                f"has {spec.input} input with {self.embedder.channels} channel(s). Use "
                "input='layer'."
            )
        self.stride, self.receptive = spec.stride, spec.receptive
        self.geometry = self.model.geometry

    # ---------------------------------------------------------------- what it is
    @property
    def sample_rate(self) -> int:
        return self.embedder.sample_rate

    @property
    def min_samples(self) -> int:
        return self.embedder.min_samples

    @property
    def hop_ms(self) -> float:
        return 1000.0 * self.geometry.hop_s

    @property
    def layer(self) -> LayerChoice:
        return self.embedder.config.layer

    def describe(self) -> dict[str, Any]:
        """What a tokenizer fit on these frames records as its ``source``."""
        layer = self.layer
        return {
            "model": self.model_ref,
            "model_identity": self.embedder.identity,
            "layer": list(layer) if isinstance(layer, tuple) else layer,
            "input": self.input,
            "freq_pool": self.embedder.config.freq_pool,
            "sample_rate": self.sample_rate,
            "frame_hop_ms": self.hop_ms,
        }

    @property
    def identity(self) -> str:
        """Changes whenever the frames would (the model's weights and embed settings, the kind)."""
        return f"{self.embedder.identity}:{self.input}" + (":targets" if self.with_targets else "")

    # ---------------------------------------------------------------- frames
    def dims(self) -> tuple[int, int | None]:
        """(input width, target width or None), measured on a short silent clip."""
        probe = self.frames([np.zeros(max(self.min_samples, self.sample_rate), np.float32)])[0]
        return int(probe.inputs.shape[1]), (
            int(probe.targets.shape[1]) if probe.targets is not None else None
        )

    @torch.inference_mode()
    def frames(self, waves: Sequence[np.ndarray]) -> list[ClipFrames]:
        """The frames of mono clips at the model's rate."""
        first_ms = float(self.geometry.centre_s(torch.zeros(())) * 1000.0)
        layers: list[torch.Tensor | None] = [None] * len(waves)
        if self.input == "layer" or self.with_targets:
            layers = [e.frames for e in self.embedder.embed(list(waves))]
        out = []
        for wave, layer_frames in zip(waves, layers, strict=True):
            if self.input == "layer":
                assert layer_frames is not None
                inputs, targets = layer_frames, layer_frames if self.with_targets else None
            else:
                inputs = self._acoustic(wave)
                targets = layer_frames
            if targets is not None:  # the same time steps in both
                n = min(inputs.shape[0], targets.shape[0])
                inputs, targets = inputs[:n], targets[:n]
            out.append(
                ClipFrames(
                    inputs.float().contiguous(),
                    None if targets is None else targets.float().contiguous(),
                    first_ms,
                    self.hop_ms,
                )
            )
        return out

    def _acoustic(self, wave: np.ndarray) -> torch.Tensor:
        """``(T, D)`` stacked features or MFCC frames of one clip."""
        x, _ = prepare_audio(wave, None, self.sample_rate, self.min_samples, 1)
        clip = torch.from_numpy(x)[None]
        features = self.model.frontend(
            AudioBatch(clip, torch.tensor([clip.shape[1]]), self.sample_rate)
        )
        values = features.values[:, :, : int(features.lengths[0])]
        if self.input == "features":
            return stacked_frames(values, self.stride, self.receptive)[0]
        return mfcc_frames(values, self.stride, self.receptive)[0]


@dataclass
class FitFrames:
    """Frames gathered for a fit: clips of ``inputs`` ``(T_i, D)`` (and ``targets``), the files
    read and the files skipped (path, cause)."""

    inputs: list[torch.Tensor]
    targets: list[torch.Tensor] | None
    files: list[str]
    skipped: list[tuple[str, str]]

    @property
    def n_frames(self) -> int:
        return sum(int(x.shape[0]) for x in self.inputs)


def gather_frames(
    paths: Sequence[str],
    source: FrameSource,
    max_frames: int | None = None,
    max_files: int | None = None,
    seed: int = 0,
    files_per_batch: int = 16,
) -> FitFrames:
    """Frames of the audio files under ``paths``, in a seeded random file order, until
    ``max_frames`` frames (the last clip cut) or ``max_files`` files; unreadable files skipped."""
    from echoic.data.audio import load_audio
    from echoic.data.discover import find_audio

    files = [str(p) for p in find_audio(paths)]
    order = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed)).tolist()
    files = [files[i] for i in order][: max_files or None]
    result = FitFrames([], [] if source.with_targets else None, [], [])
    for start in range(0, len(files), files_per_batch):
        waves, names = [], []
        for path in files[start : start + files_per_batch]:
            try:
                waves.append(load_audio(path, sample_rate=source.sample_rate)[0])
                names.append(path)
            except Exception as err:  # a bad file never stops a fit
                result.skipped.append((path, f"{type(err).__name__}: {err}"))
        for name, clip in zip(names, source.frames(waves), strict=True):
            room = None if max_frames is None else max_frames - result.n_frames
            if room is not None and room <= 0:
                return result
            result.inputs.append(clip.inputs[:room])
            if result.targets is not None and clip.targets is not None:
                result.targets.append(clip.targets[:room])
            result.files.append(name)
        if max_frames is not None and result.n_frames >= max_frames:
            break
    return result


def recorded_source(
    recorded: dict[str, Any], model: str | None = None, layer: LayerChoice | None = None
) -> FrameSource:
    """The frame source a tokenizer's ``source`` record names (model, layer, input kind,
    pooling), with ``model`` / ``layer`` overriding the recorded ones."""
    chosen = layer if layer is not None else recorded.get("layer")
    if isinstance(chosen, list):
        chosen = tuple(chosen)
    options: dict[str, Any] = {}
    if recorded.get("freq_pool"):
        options["freq_pool"] = recorded["freq_pool"]
    name = model or recorded.get("model")
    if not name:
        raise ConfigError(
            "the tokenizer records no source model (it was not fit by echoic tokenizer fit); "
            "pass the model whose frames it reads (--model)."
        )
    return FrameSource(str(name), chosen, input=str(recorded.get("input", "layer")), **options)
