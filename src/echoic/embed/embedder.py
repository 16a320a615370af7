"""The Embedder: any-length audio → scene and timestamp embeddings from an echoic model.

How a clip is embedded:
1. It is cut into chunks of ``chunk_s`` seconds that overlap by ``overlap_s``; chunk starts sit on
   the encoder's time-patch grid, and the last chunk is shifted back to end at the clip's end, so
   every chunk but a short clip's only one is full-length.
2. Chunks of all clips are batched (``batch_size`` per forward), encoded, and one layer is chosen
   (an index, ``"mean"`` of all layers, or given weights). Tokens of one time patch are pooled over
   frequency (mean, or concatenated) into one frame embedding per time patch.
3. Frames are stitched: each time patch is taken from the chunk where it sits farthest from an edge
   (the midpoint of each overlap is the boundary). Padding never enters a pooled value.
4. Scene embedding = mean of the stitched frames (``scene_pool="mean+max"``: their mean plus their
   maximum, BYOL-A's pooling; ``scene_pool="segments"``: the unweighted mean of the frames' Sylber
   similarity segments' means, at :class:`~echoic.embed.segment.SimilarityConfig`'s defaults, the
   segments ``echoic segment`` writes; a clip with no segment gets the frame mean, see
   :func:`~echoic.embed.segment.segments_scene`). Timestamp embeddings = the stitched frames,
   linearly interpolated onto a regular grid whose hop is the patch hop divided by the smallest
   integer that brings it to ≤ ``max_timestamp_hop_ms``; timestamps are frame centres in ms, and
   those beyond the clip's duration are dropped.
5. ``shifts = k > 1`` (timestamps only): the clip is also embedded with its first ``j/k`` of a
   time patch cut off, for ``j = 1 … k-1``; the frames of the k passes interleave into frames
   ``patch hop / k`` apart, each computed from audio centred on its own time (no interpolation
   between patches). Costs k forward passes; scene embeddings and ``frames`` stay those of the
   unshifted pass, and ``scene_embeddings`` runs that pass alone.

Because each chunk's frontend and encoder outputs depend only on that chunk's own samples, a clip
gets the same embeddings alone or in a batch of clips of other lengths.

Channels: a model whose frontend takes ``C > 1`` channels embeds ``(C, S)`` clips (chunks slice
the sample axis, every channel alike); a mono model takes ``(S,)`` clips, and ``(C, S)`` ones are
mixed down by their channel mean first (:func:`echoic.data.audio.prepare_audio`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from echoic.checkpoint import DEFAULT_MODEL, EchoicModel, load
from echoic.config import from_dict, to_dict
from echoic.data.audio import prepare_audio
from echoic.data.batch import pad_batch
from echoic.embed.base import ClipEmbedding, EmbeddingMethods, with_numerics_version
from echoic.embed.device import exact_fp32, module_device, resolve_device
from echoic.embed.precision import cast_model, choose_precision, input_dtype
from echoic.embed.segment import SimilarityConfig, segments_scene
from echoic.embed.stitch import FrameStitcher
from echoic.embed.timestamps import interpolated_timestamps, timestamp_hop_ms
from echoic.errors import ConfigError
from echoic.types import AudioBatch

LayerChoice = int | str | tuple[float, ...]

SCENE_POOLS = ("mean", "mean+max", "segments")

_LATER_MODEL_FIELDS = (
    ("frontend_config", "channels", 1),
    ("frontend_config", "interchannel", "none"),
    ("encoder_config", "in_channels", 1),
    # ViT options of the converted layouts (AST, SSAST, Dasheng)
    ("encoder_config", "patch_stride", None),
    ("encoder_config", "flatten", "time_major"),
    ("encoder_config", "positions", "sincos"),
    ("encoder_config", "position_grid", None),
    ("encoder_config", "position_fit", "start"),
    ("encoder_config", "dist_token", False),
    ("encoder_config", "input_norm", False),
    ("encoder_config", "post_norm", False),
    ("encoder_config", "patchout", None),  # train-time token dropping (issue 20): inert here
    # frontend options of the s3prl conversions (per-utterance CMVN, BYOL-A / TERA log-mel)
    ("frontend_config", "cmvn", False),
    ("frontend_config", "cmvn_eps", 1e-10),
    ("frontend_config", "log_offset", 0.0),
    ("frontend_config", "target_level_db", None),
)
"""(part of the model config, key, default) of fields added after identities existed."""


@dataclass
class EmbedConfig:
    """How embeddings are taken from a model."""

    layer: LayerChoice = -1
    chunk_s: float = 10.24
    overlap_s: float = 2.56
    max_timestamp_hop_ms: float = 50.0
    batch_size: int = 8
    freq_pool: str = "mean"  # "mean" | "concat"
    # "mean" | "mean+max" (BYOL-A: temporal mean + max of the frames) | "segments" (mean of the
    # means of the frames' similarity segments, each syllable-like unit once: echoic.embed.segment)
    scene_pool: str = "mean"
    shifts: int = 1  # timestamp passes per time patch (see module docstring, step 5)
    precision: str = "fp32"  # "fp32" | "bf16" | "int8" | "auto" (echoic.embed.precision)
    device: str = "cpu"  # "cpu" | "cuda" | "cuda:N" | "auto" (echoic.embed.device); not in identity


class Embedder(EmbeddingMethods):
    """Scene and timestamp embeddings of any-length audio (see module docstring)."""

    def __init__(
        self,
        model: EchoicModel | str = DEFAULT_MODEL,
        config: EmbedConfig | dict[str, Any] | None = None,
        **overrides: object,
    ) -> None:
        self.model = load(model) if isinstance(model, str) else model
        self.model.eval()
        if isinstance(config, dict) or config is None:
            # the model's recommended settings first, then the caller's
            merged = {**dict(self.model.config.embed), **(config or {}), **overrides}
            config = from_dict(EmbedConfig, merged, where="EmbedConfig")
        elif overrides:
            config = from_dict(EmbedConfig, {**config.__dict__, **overrides}, where="EmbedConfig")
        if isinstance(config.layer, list):
            config.layer = tuple(config.layer)
        self.config = config
        # reduced precision or another device runs a converted copy; identities hash the original
        # weights. The run follows wherever self.model is (HEAR's model.to("cuda") moves it).
        self.device = resolve_device(config.device)
        self.precision = choose_precision(self.model, config.precision, self.device)
        self._reference = self.model
        self.model = cast_model(self.model, self.precision, self.device)
        self._input_dtype = input_dtype(self.precision)
        # all timing comes from the encoder protocol (encoders/base.py), never its config
        self._spec = self.model.encoder.spec
        self._geometry = self.model.geometry
        self._token_hop = self._geometry.hop_samples  # samples per time step
        self._min_samples = self._geometry.min_samples  # shorter clips are zero-padded
        rate = self.model.sample_rate
        self._chunk_tokens = max(1, round(config.chunk_s * rate / self._token_hop))
        overlap = round(config.overlap_s * rate / self._token_hop)
        if not 0 <= overlap < self._chunk_tokens:
            raise ConfigError(
                f"overlap_s={config.overlap_s} must be ≥ 0 and shorter than chunk_s={config.chunk_s}"
            )
        self._step_tokens = self._chunk_tokens - overlap
        if config.freq_pool not in ("mean", "concat"):
            raise ConfigError(f"freq_pool must be 'mean' or 'concat'; found {config.freq_pool!r}")
        if config.scene_pool not in SCENE_POOLS:
            raise ConfigError(
                f"scene_pool must be 'mean', 'mean+max' or 'segments'; found {config.scene_pool!r}"
            )
        if not (isinstance(config.shifts, int) and config.shifts >= 1):
            raise ConfigError(f"shifts must be an integer ≥ 1; found {config.shifts!r}")
        if self._token_hop % config.shifts:
            raise ConfigError(
                f"shifts={config.shifts} must divide the {self._token_hop} samples of one time "
                f"patch (so shifted frames fall on a regular grid); pick a divisor such as "
                f"{', '.join(str(k) for k in (2, 4, 8) if self._token_hop % k == 0)}"
            )
        self._check_layer(config.layer)

    # ---------------------------------------------------------------- properties
    @property
    def sample_rate(self) -> int:
        return self.model.sample_rate

    @property
    def channels(self) -> int:
        """Audio channels a clip must have: 1 (mono ``(S,)``) or the frontend's ``C`` (``(C, S)``)."""
        return self.model.frontend.channels

    @property
    def embedding_size(self) -> int:
        dim = self._spec.width
        return dim * self._spec.freq_tokens if self.config.freq_pool == "concat" else dim

    @property
    def min_samples(self) -> int:
        """The shortest input giving one time step; shorter clips are zero-padded to this."""
        return self._min_samples

    @property
    def frame_hop_ms(self) -> float:
        return 1000.0 * self._token_hop / self.sample_rate

    @property
    def timestamp_hop_ms(self) -> float:
        hop = self.frame_hop_ms / self.config.shifts
        return timestamp_hop_ms(hop, self.config.max_timestamp_hop_ms)

    @property
    def label(self) -> str:
        return self.model.label

    @property
    def identity(self) -> str:
        """Stable key of (weights, model config, embed config): changes whenever outputs would."""
        digest = hashlib.sha256()
        for name, tensor in sorted(self._reference.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        model = to_dict(self.model.config)
        model.pop("embed", None)  # only a default for self.config, which is hashed itself
        # added later: at their defaults (mono), identities stay as they were
        for part, key, default in _LATER_MODEL_FIELDS:
            if model[part].get(key, default) == default:
                model[part].pop(key, None)
        embed = to_dict(self.config)
        for key, default in (("shifts", 1), ("scene_pool", "mean")):  # added later: at their
            if embed[key] == default:  # defaults, identities stay as they were
                del embed[key]
        del embed["precision"]  # the resolved one ("auto" is not a precision), fp32 left out
        del embed["device"]  # where it runs never changes what it computes
        if self.config.scene_pool == "segments":  # the segmentation's settings shape the scene
            embed["similarity"] = asdict(SimilarityConfig())
        if self.precision != "fp32":
            embed["precision"] = self.precision
        meta = with_numerics_version({"model": model, "embed": embed})
        digest.update(json.dumps(meta, sort_keys=True).encode())
        return f"{self.model.config.name or self.model.config.encoder}-{digest.hexdigest()[:16]}"

    # ---------------------------------------------------------------- public API
    def to_device(self, device: str | torch.device) -> Embedder:
        """Run on ``device`` from now on (a copy of the model goes there; outputs stay CPU
        float32, the identity does not change); returns ``self``."""
        self.device = resolve_device(device)
        self.model = cast_model(self._reference, self.precision, self.device)
        return self

    def embed(
        self,
        waveforms: Sequence[torch.Tensor | np.ndarray],
        sample_rate: int | None = None,
        lazy_timestamps: bool = False,
    ) -> list[ClipEmbedding]:
        """Embed clips of any lengths at ``sample_rate`` (default the model's): ``(S,)`` arrays for
        a mono model (``(C, S)`` ones are mixed down), ``(C, S)`` for a ``C``-channel model.
        ``lazy_timestamps``: leave ``timestamps`` empty and give ``lazy_timestamps`` instead (the
        frames they interpolate; same values, computed on demand)."""
        return self._embed(waveforms, sample_rate, self.config.shifts, lazy_timestamps)

    def scene_embeddings(
        self, waveforms: Sequence[torch.Tensor | np.ndarray], sample_rate: int | None = None
    ) -> torch.Tensor:
        """``(B, D)`` scene embeddings (one pass: ``shifts`` only concerns timestamps)."""
        return torch.stack([e.scene for e in self._embed(waveforms, sample_rate, 1)])

    @torch.inference_mode()
    def _embed(
        self,
        waveforms: Sequence[torch.Tensor | np.ndarray],
        sample_rate: int | None,
        shifts: int,
        lazy: bool = False,
    ) -> list[ClipEmbedding]:
        if len(waveforms) == 0:
            return []
        clips, lengths = zip(*(self._prepare(w, sample_rate) for w in waveforms), strict=True)
        offsets = [j * self._token_hop // shifts for j in range(shifts)]
        # one job list over every (clip, pass): passes of one clip batch with other clips' chunks
        inputs = [self._shifted(c, off) for c in clips for off in offsets]
        plans = [self._plan(int(x.shape[-1])) for x in inputs]
        jobs = [(i, k) for i, plan in enumerate(plans) for k in range(len(plan))]
        jobs.sort(key=lambda job: -self._chunk_len(inputs[job[0]], plans[job[0]][job[1]]))
        # chunk outputs go straight into each pass's frames: they are never all held at once
        stitchers = [FrameStitcher(plan) for plan in plans]
        bs = max(1, self.config.batch_size)
        for start in range(0, len(jobs), bs):
            group = jobs[start : start + bs]
            pieces = [self._chunk(inputs[i], plans[i][k]) for i, k in group]
            with exact_fp32():  # float32 means float32 on a GPU too (no TF32)
                frames, valid = self._encode(pieces)
            for row, (i, k) in enumerate(group):
                stitchers[i].add(k, frames[row, : int(valid[row])])
        passes = [stitcher.frames() for stitcher in stitchers]
        inputs.clear()  # the prepared and shifted copies of the audio: not needed from here on
        del clips, stitchers
        n = len(offsets)
        return [
            self._clip_embedding(passes[c * n : (c + 1) * n], lengths[c], lazy)
            for c in range(len(lengths))
        ]

    # ---------------------------------------------------------------- internals
    def _check_layer(self, layer: LayerChoice) -> None:
        n = self._spec.n_layers
        if isinstance(layer, int):
            if not -n <= layer < n:
                raise ConfigError(f"layer index {layer} out of range for {n} layers (0..{n - 1})")
        elif isinstance(layer, str):
            if layer != "mean":
                raise ConfigError(f"layer must be an int, 'mean' or weights; found {layer!r}")
        elif len(layer) != n:
            raise ConfigError(f"layer weights need {n} values (one per layer); found {len(layer)}")

    def _prepare(
        self, wave: torch.Tensor | np.ndarray, sample_rate: int | None
    ) -> tuple[torch.Tensor, int]:
        """``(S,)`` (mono) or ``(C, S)`` float32 at the model's rate, padded to one time step; and
        the length before padding."""
        x, length = prepare_audio(
            wave, sample_rate, self.sample_rate, self._min_samples, self.channels
        )
        return torch.from_numpy(x), length

    def _shifted(self, clip: torch.Tensor, offset: int) -> torch.Tensor:
        """The clip ``(..., S)`` without its first ``offset`` samples, zero-padded to one time step."""
        if offset == 0:
            return clip
        rest = clip[..., offset:]
        if rest.shape[-1] >= self._min_samples:
            return rest
        return torch.nn.functional.pad(rest, (0, self._min_samples - int(rest.shape[-1])))

    def _plan(self, n_samples: int) -> list[tuple[int, int]]:
        """Chunks of one clip as (first token, end token) on the global time-patch grid.

        Full-length chunks, evenly spaced so that neighbours overlap by at least ``overlap_s``.
        """
        total = self._geometry.num_time_steps(n_samples)
        last_start = total - self._chunk_tokens
        if last_start <= 0:
            return [(0, total)]
        n_chunks = 1 + math.ceil(last_start / self._step_tokens)
        starts = [round(k * last_start / (n_chunks - 1)) for k in range(n_chunks)]
        return [(s, s + self._chunk_tokens) for s in starts]

    def _chunk_len(self, clip: torch.Tensor, span: tuple[int, int]) -> int:
        first, end = span
        start = first * self._token_hop
        want = self._geometry.samples_for(end - first)
        return min(want, int(clip.shape[-1]) - start)

    def _chunk(self, clip: torch.Tensor, span: tuple[int, int]) -> torch.Tensor:
        """The samples ``(..., n)`` of one chunk (every channel)."""
        start = span[0] * self._token_hop
        return clip[..., start : start + self._chunk_len(clip, span)]

    def _encode(self, pieces: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame embeddings ``(b, T, D)`` and valid frame counts ``(b,)`` of a group of chunks
        (float32 on the CPU, wherever the model runs)."""
        batch = pad_batch(pieces, self.sample_rate)
        device = module_device(self.model)
        if device.type != "cpu":
            batch = AudioBatch(
                batch.waveform.to(device), batch.lengths.to(device), batch.sample_rate
            )
        features = self.model.frontend(batch)
        if self._input_dtype is not None:  # reduced precision: the encoder's input too
            features.values = features.values.to(self._input_dtype)
        out = self.model.encoder(features)
        layers = [h.float() for h in out.layers]  # a no-op at fp32
        layer = self.config.layer
        if isinstance(layer, int):
            tokens = layers[layer]
        elif isinstance(layer, str):
            tokens = torch.stack(layers).mean(0)
        else:
            weights = torch.tensor(layer, dtype=layers[0].dtype, device=layers[0].device)
            tokens = torch.einsum("l,lbnd->bnd", weights, torch.stack(layers))
        b, _, d = tokens.shape
        n_freq, n_time = out.grid
        # place every token at its (time, freq) cell: pooling never relies on the flatten order
        grid = tokens.new_zeros(b, n_time, n_freq, d)
        rows = torch.arange(b, device=tokens.device)[:, None]
        grid[rows, out.time_index, out.freq_index] = tokens
        frames = grid.mean(2) if self.config.freq_pool == "mean" else grid.reshape(b, n_time, -1)
        time_padding = torch.ones(b, n_time, dtype=torch.bool, device=tokens.device)
        time_padding[rows, out.time_index] = out.padding_mask
        return frames.cpu(), (~time_padding).sum(1).cpu()

    def _clip_embedding(
        self, passes: list[torch.Tensor], n_samples: int, lazy: bool = False
    ) -> ClipEmbedding:
        """Scene + native frames from the first pass; timestamps from all passes interleaved."""
        k = len(passes)
        frames = passes[0]
        idx = torch.arange(frames.shape[0], dtype=torch.float64)
        frame_ms = self._geometry.centre_s(idx) * 1000.0
        if k == 1:
            fine, fine_ms = frames, frame_ms
        else:
            # element t * k + j is frame t of pass j; keep the longest prefix with no gap
            n_fine = min(p.shape[0] * k + j for j, p in enumerate(passes))
            rows = math.ceil(n_fine / k)
            heads = [p[:rows] for p in passes]  # a later pass may be one frame short: pad it
            padded = [torch.nn.functional.pad(h, (0, 0, 0, rows - h.shape[0])) for h in heads]
            fine = torch.stack(padded, 1).reshape(rows * k, -1)[:n_fine]
            step = torch.arange(n_fine, dtype=torch.float64) * (self.frame_hop_ms / k)
            fine_ms = frame_ms[0] + step
        grid, ts_ms = interpolated_timestamps(
            fine,
            fine_ms,
            duration_ms=1000.0 * n_samples / self.sample_rate,
            frame_hop_ms=self.frame_hop_ms / k,
            max_hop_ms=self.config.max_timestamp_hop_ms,
        )
        scene = frames.mean(0)
        if self.config.scene_pool == "mean+max":
            scene = scene + frames.amax(0)
        elif self.config.scene_pool == "segments":  # the native frames, as `echoic segment`
            scene = torch.from_numpy(segments_scene(frames.numpy(), SimilarityConfig()))
        return ClipEmbedding(
            scene=scene,
            frames=frames,
            frame_times_ms=frame_ms,
            timestamps=frames[:0] if lazy else grid.dense(),
            timestamps_ms=ts_ms,
            lazy_timestamps=grid if lazy else None,
        )
