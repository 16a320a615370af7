"""Audio files → float32 numpy arrays: probing, loading, streaming, with errors that name the file.

Decoding goes through soundfile (libsndfile: wav, flac, ogg vorbis/opus, mp3, aiff, au, ...) first
and falls back to PyAV (FFmpeg: m4a/mp4/aac, webm/mka, anything libsndfile refuses). Channels are
mixed to mono by their mean, and audio is resampled with soxr (quality ``"HQ"``) only when the
asked rate differs from the file's.

Samples are **not clipped**: lossy codecs (Opus, MP3, AAC, Vorbis) can decode a full-scale source
slightly above 1.0 (the ESC-50 copy in ``shared/data`` peaks at 1.37), and clipping would add
distortion that the encoder never saw. Callers that need ``[-1, 1]`` must clip themselves.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from echoic.data._backends import Reader, check_path, no_samples_error, open_reader
from echoic.errors import AudioError

PathLike = str | os.PathLike[str]

AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".wav",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".m4a",
        ".mp4",
        ".aac",
        ".webm",
        ".mka",
        ".aiff",
        ".aif",
        ".au",
    }
)
"""Lower-case file name endings (with the dot) that :func:`echoic.data.find_audio` picks up."""

RESAMPLE_QUALITY = "HQ"
_READ_BLOCK = 1 << 16  # frames per chunk when PyAV decodes a whole file


@dataclass
class AudioInfo:
    """What the header (soundfile) or the container (PyAV) says about a file.

    ``frames`` is exact for soundfile; for PyAV it is estimated from the container duration
    (may differ from the decoded count by codec padding) and ``-1`` when the container has none.
    """

    path: Path
    sample_rate: int
    channels: int
    frames: int
    duration_s: float
    backend: str


def audio_info(path: PathLike) -> AudioInfo:
    """Probe ``path`` without decoding its audio; raises :class:`AudioError` like :func:`load_audio`."""
    p = check_path(path)
    reader = open_reader(p)
    try:
        frames = -1 if reader.frames is None else reader.frames
        duration = frames / reader.sample_rate if frames >= 0 else math.nan
        return AudioInfo(p, reader.sample_rate, reader.channels, frames, duration, reader.backend)
    finally:
        reader.close()


def _check_finite(x: np.ndarray, path: Path, first_frame: int, sample_rate: int) -> None:
    """Raise if ``x`` ``(C, n)`` holds NaN or ±inf; ``first_frame`` locates it in the file."""
    finite = np.isfinite(x)
    if finite.all():
        return
    bad = ~finite
    n_nan = int(np.isnan(x).sum())
    n_inf = int(bad.sum()) - n_nan
    kinds = ", ".join(k for k, n in ((f"{n_nan} NaN", n_nan), (f"{n_inf} inf", n_inf)) if n)
    at = (first_frame + int(np.argmax(bad.any(axis=0)))) / sample_rate
    raise AudioError(
        str(path),
        f"non-finite samples ({kinds}), the first at {at:.3f} s; expected finite float audio",
        "the file is corrupt or was written from a broken computation; regenerate it",
    )


def _mix(x: np.ndarray, mono: bool) -> np.ndarray:
    """``(C, n)`` → ``(n,)`` channel mean when ``mono``, else contiguous ``(C, n)``."""
    if mono:
        return np.ascontiguousarray(x[0]) if x.shape[0] == 1 else x.mean(axis=0, dtype=np.float32)
    return np.ascontiguousarray(x)


def _check_rate(sample_rate: int | None) -> None:
    if sample_rate is not None and (int(sample_rate) != sample_rate or sample_rate <= 0):
        raise ValueError(f"sample_rate must be a positive integer or None; found {sample_rate!r}")


def resample(x: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Resample ``(S,)`` or ``(C, S)`` float audio with soxr ``"HQ"``; returns float32, same layout.

    Returns ``x`` as float32 unchanged when the rates are equal. Output length is
    ``round(S * new_rate / orig_rate)`` (soxr's rounding).
    """
    _check_rate(orig_rate)
    _check_rate(new_rate)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim not in (1, 2):
        raise ValueError(f"resample expects (S,) or (C, S) audio; found shape {x.shape}")
    if orig_rate == new_rate:
        return x
    y = soxr.resample(x.T, int(orig_rate), int(new_rate), quality=RESAMPLE_QUALITY).T
    return np.ascontiguousarray(y, dtype=np.float32)


def prepare_mono(
    wave: Any, sample_rate: int | None, target_rate: int, min_samples: int
) -> tuple[np.ndarray, int]:
    """A 1-D waveform (numpy or torch) as contiguous float32 at ``target_rate`` (resampled from
    ``sample_rate`` when given and different), zero-padded to ``min_samples``; and its length
    before padding."""
    x = np.asarray(wave.detach().cpu() if hasattr(wave, "detach") else wave)
    if x.ndim != 1:
        raise ValueError(f"expected 1-D mono audio; found shape {x.shape}. Mix down first.")
    x = x.astype(np.float32, copy=False)
    if sample_rate is not None and sample_rate != target_rate:
        x = resample(x, sample_rate, target_rate)
    length = int(x.shape[0])
    if length < min_samples:
        x = np.pad(x, (0, min_samples - length))
    return np.ascontiguousarray(x), length


def prepare_audio(
    wave: Any, sample_rate: int | None, target_rate: int, min_samples: int, channels: int = 1
) -> tuple[np.ndarray, int]:
    """A waveform (numpy or torch) ready for a model taking ``channels`` channels.

    Mono models (``channels=1``): a ``(S,)`` waveform goes through :func:`prepare_mono` unchanged;
    a ``(C, S)`` one is first mixed down by its channel mean, as :func:`load_audio` does. Models of
    ``C > 1`` channels take ``(C, S)`` only. The result is contiguous float32 at ``target_rate``
    (every channel resampled with the same soxr resampler as :func:`load_audio`), zero-padded on
    the sample axis to ``min_samples``: ``(S',)`` or ``(C, S')``; and its length before padding.

    Raises:
        ValueError: a mono ``(S,)`` waveform for a multichannel model, a channel count other than
            ``channels``, a ``(S, C)`` (samples-first) array, or more than two dimensions.
    """
    x = np.asarray(wave.detach().cpu() if hasattr(wave, "detach") else wave)
    if channels == 1 and x.ndim == 1:
        return prepare_mono(x, sample_rate, target_rate, min_samples)
    if x.ndim == 1:
        raise ValueError(
            f"the model takes {channels}-channel audio (C={channels}, S); found mono audio of shape "
            f"{x.shape}. Load with load_audio(path, mono=False), or stack {channels} copies "
            f"(np.stack([wave] * {channels})) to feed a mono signal."
        )
    if x.ndim != 2:
        raise ValueError(
            f"expected (S,) or (C, S) audio; found shape {x.shape}. Pass one clip at a time."
        )
    if channels == 1:  # more rows than samples: a (S, C) array, not a downmixable (C, S) one
        samples_first = x.shape[0] > x.shape[1]
    else:
        samples_first = x.shape[1] == channels != x.shape[0]
    if samples_first:
        raise ValueError(
            f"expected channels first, (C, S); found shape {x.shape}, which looks like (S, C) "
            "samples-first (soundfile's layout). Pass wave.T."
        )
    if channels == 1:
        return prepare_mono(
            _mix(x.astype(np.float32, copy=False), True), sample_rate, target_rate, min_samples
        )
    if x.shape[0] != channels:
        raise ValueError(
            f"the model takes {channels}-channel audio (C={channels}, S); found {x.shape[0]} "
            f"channels, shape {x.shape}. Select or mix channels to {channels} first, or use a model "
            f"built for {x.shape[0]} channels."
        )
    x = x.astype(np.float32, copy=False)
    if sample_rate is not None and sample_rate != target_rate:
        x = resample(x, sample_rate, target_rate)
    length = int(x.shape[-1])
    if length < min_samples:
        x = np.pad(x, ((0, 0), (0, min_samples - length)))
    return np.ascontiguousarray(x), length


def load_audio(
    path: PathLike,
    sample_rate: int | None = None,
    mono: bool = True,
    offset_s: float = 0.0,
    duration_s: float | None = None,
    max_duration_s: float | None = None,
) -> tuple[np.ndarray, int]:
    """Decode a file to float32.

    Args:
        path: any file soundfile or PyAV can decode.
        sample_rate: output rate; None keeps the file's rate. Resampled with soxr "HQ" only if different.
        mono: mix channels down by their mean; False keeps every channel, ``(C, S)`` (each
            resampled by the same soxr resampler as mono audio), for multichannel models.
        offset_s / duration_s: decode only ``[offset_s, offset_s + duration_s)`` (sample-exact;
            PyAV decodes and drops the part before the offset).
        max_duration_s: refuse to decode more than this many seconds (guards memory).

    Returns:
        ``(x, rate)``: ``x`` is ``(S,)`` when ``mono`` else ``(C, S)``, float32, **not clipped**
        (lossy decodes can exceed 1.0 slightly); ``rate`` is the rate of ``x``.

    Raises:
        AudioError: missing file, directory, empty file, undecodable or truncated file (naming the
            backends tried), zero-length audio, NaN/inf samples, or audio longer than
            ``max_duration_s``. The message names the file, the cause and a fix.
    """
    _check_rate(sample_rate)
    if offset_s < 0 or (duration_s is not None and duration_s <= 0):
        raise ValueError(f"need offset_s >= 0 and duration_s > 0; found {offset_s}, {duration_s}")
    p = check_path(path)
    reader = open_reader(p)
    try:
        x = _read(reader, offset_s, duration_s, max_duration_s)
        rate = reader.sample_rate
    finally:
        reader.close()
    x = _mix(x, mono)
    if sample_rate is not None and sample_rate != rate:
        x, rate = resample(x, rate, sample_rate), int(sample_rate)
    return x, rate


def _too_long(path: Path, seconds: float, max_duration_s: float) -> AudioError:
    return AudioError(
        str(path),
        f"too long: {seconds:.1f} s of audio to decode, more than max_duration_s={max_duration_s:g}",
        "raise max_duration_s, load a part with offset_s/duration_s, or use stream_audio",
    )


def _read(
    reader: Reader, offset_s: float, duration_s: float | None, max_duration_s: float | None
) -> np.ndarray:
    """``(C, n)`` float32 of the asked span, checked for length and finiteness."""
    rate = reader.sample_rate
    start = round(offset_s * rate)
    count = None if duration_s is None else max(round(duration_s * rate), 1)
    limit = None if max_duration_s is None else math.floor(max_duration_s * rate)
    if limit is not None and reader.frames_exact and reader.frames is not None:
        available = max(reader.frames - start, 0)
        wanted = available if count is None else min(count, available)
        if wanted > limit:
            raise _too_long(reader.path, wanted / rate, max_duration_s or 0.0)
    if reader.frames_exact:  # soundfile: one read of the whole span
        chunks = list(reader.chunks(start, count, block=count or max(reader.frames or 0, 1)))
    else:  # PyAV: decode in pieces so an over-long file stops early
        chunks, total = [], 0
        for chunk in reader.chunks(start, count, _READ_BLOCK):
            chunks.append(chunk)
            total += chunk.shape[1]
            if limit is not None and total > limit:
                raise _too_long(reader.path, total / reader.sample_rate, max_duration_s or 0.0)
    rate = reader.sample_rate  # PyAV may correct the header's rate once decoding starts
    if not chunks:
        if start > 0:
            raise AudioError(
                str(reader.path),
                f"offset_s={offset_s:g} is at or past the end of the audio",
                "use a smaller offset_s (audio_info(path).duration_s gives the length)",
            )
        raise no_samples_error(reader)
    x = chunks[0] if len(chunks) == 1 else np.concatenate(chunks, axis=1)
    _check_finite(x, reader.path, start, rate)
    return x


def require_min_samples(x: np.ndarray, n: int, path: PathLike) -> None:
    """Raise :class:`AudioError` when ``x`` (``(S,)`` or ``(C, S)``) has fewer than ``n`` samples.

    For models with a minimum input (e.g. one 25-ms window = 400 samples at 16 kHz).
    """
    found = int(x.shape[-1])
    if found < n:
        raise AudioError(
            str(path),
            f"too short: {found} sample{'' if found == 1 else 's'}, need ≥ {n}",
            "drop the file, or zero-pad it to the minimum length before embedding",
        )


def stream_audio(
    path: PathLike, block_s: float, sample_rate: int | None = None, mono: bool = True
) -> Iterator[np.ndarray]:
    """Yield consecutive float32 blocks of ``block_s`` seconds without reading the whole file.

    Every block but the last holds exactly ``round(block_s * rate)`` samples at the output rate:
    ``(n,)`` when ``mono`` else ``(C, n)``. Resampling uses :class:`soxr.ResampleStream` with the same
    quality as :func:`load_audio`; the concatenated blocks equal ``load_audio(path, sample_rate,
    mono)``: tests allow 1e-4, measured differences are 0 (soundfile, PyAV + soxr) or below 1e-39
    (libopus denormals); there are no edge effects, because soxr's stream is flushed at the end.
    Memory stays at a few blocks.

    Raises:
        AudioError: as :func:`load_audio` (NaN/inf is checked per block, so blocks before a bad
            one have already been yielded).
    """
    _check_rate(sample_rate)
    if not block_s > 0:
        raise ValueError(f"block_s must be > 0; found {block_s}")
    p = check_path(path)
    reader = open_reader(p)
    try:
        yield from _stream(reader, block_s, sample_rate, mono)
    finally:
        reader.close()


def _stream(
    reader: Reader, block_s: float, sample_rate: int | None, mono: bool
) -> Iterator[np.ndarray]:
    in_block = max(math.ceil(block_s * reader.sample_rate), 1)
    resampler: soxr.ResampleStream | None = None
    out_rate, out_block = reader.sample_rate, 0
    pending: list[np.ndarray] = []  # output-rate pieces not yet yielded, (n,) or (C, n)
    held = 0
    position = 0
    for chunk in reader.chunks(0, None, in_block):
        if position == 0:  # rate/channels are final once the first chunk has been decoded
            out_rate = sample_rate or reader.sample_rate
            out_block = max(round(block_s * out_rate), 1)
            if out_rate != reader.sample_rate:
                channels = 1 if mono else chunk.shape[0]
                resampler = soxr.ResampleStream(
                    reader.sample_rate, out_rate, channels, "float32", RESAMPLE_QUALITY
                )
        _check_finite(chunk, reader.path, position, reader.sample_rate)
        position += chunk.shape[1]
        x = _mix(chunk, mono)
        if resampler is not None:
            x = np.ascontiguousarray(resampler.resample_chunk(np.ascontiguousarray(x.T)).T)
        pending.append(x)
        held += x.shape[-1]
        while held >= out_block:
            block, pending, held = _take(pending, out_block)
            yield block
    if position == 0:
        raise no_samples_error(reader)
    if resampler is not None:
        shape = (0,) if mono else (0, reader.channels)
        tail = resampler.resample_chunk(np.zeros(shape, np.float32), last=True)
        pending.append(np.ascontiguousarray(tail.T))
        held += tail.shape[0]
    while held > 0:
        block, pending, held = _take(pending, min(out_block, held))
        yield block


def _take(pending: list[np.ndarray], n: int) -> tuple[np.ndarray, list[np.ndarray], int]:
    """Split the first ``n`` samples (last axis) off a list of pieces."""
    joined = pending[0] if len(pending) == 1 else np.concatenate(pending, axis=-1)
    block, rest = joined[..., :n], joined[..., n:]
    rest_list = [rest] if rest.shape[-1] else []
    return np.ascontiguousarray(block), rest_list, int(rest.shape[-1])
