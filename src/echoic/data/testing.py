"""Writers of small audio files for tests: good clips, every supported format, and odd files.

Used by the data tests and by CLI tests, so the API is kept stable:

- :func:`make_good_files` — ``n`` short mono wav clips.
- :func:`make_panned_files` — ``n`` short 2-channel wav clips whose channels differ by a delay
  and a level (a crude binaural pan: spatial pretraining smoke runs and tests).
- :func:`make_format_files` — the same tone in wav, flac, ogg vorbis, ogg opus, mp3, m4a, webm.
- :func:`make_odd_files` — 20 awkward inputs mapped to the problem each one has.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile as sf

ODD_FILE_COUNT = 20
"""Files written by :func:`make_odd_files`: 4 valid (values start with ``"valid"``), 16 invalid."""

MIN_SAMPLES = 400
"""The minimum length the one-sample odd files fail (``require_min_samples(x, MIN_SAMPLES)``)."""


def tone(
    sample_rate: int = 16000, seconds: float = 1.0, frequency: float = 440.0, amplitude: float = 0.5
) -> np.ndarray:
    """``(S,)`` float32 sine with 10-ms raised-cosine fades (keeps lossy codecs well behaved)."""
    n = round(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    x = amplitude * np.sin(2 * np.pi * frequency * t)
    fade = min(round(0.01 * sample_rate), n // 2)
    if fade:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
        x[:fade] *= ramp
        x[n - fade :] *= ramp[::-1]
    return x.astype(np.float32)


def make_good_files(
    directory: str | Path, n: int, sample_rate: int = 16000, seconds: float = 1.0
) -> list[Path]:
    """Write ``n`` mono 16-bit wav clips ``good_000.wav, ...``: tones of distinct pitch plus noise.

    Returns the paths in name order. Deterministic for given arguments.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        x = tone(sample_rate, seconds, frequency=220.0 * 2 ** (i / 12), amplitude=0.4)
        x = x + 0.01 * rng.standard_normal(int(x.shape[0])).astype(np.float32)
        path = directory / f"good_{i:03d}.wav"
        sf.write(path, x, sample_rate, subtype="PCM_16")
        paths.append(path)
    return paths


def make_panned_files(
    directory: str | Path, n: int, sample_rate: int = 16000, seconds: float = 2.0
) -> list[Path]:
    """Write ``n`` 2-channel float wav clips ``panned_000.wav, ...``; returns the paths.

    Each clip is a source (a harmonic tone gliding in pitch, under noise bursts) on channel 0 and
    the same source delayed by ``-12 … 12`` samples (±0.75 ms at 16 kHz) and scaled by ``-12 …
    12`` dB on channel 1, both drawn per clip. Deterministic for given arguments.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    margin = 12
    length = round(seconds * sample_rate)
    t = np.arange(length + 2 * margin) / sample_rate
    paths = []
    for i in range(n):
        pitch = 150.0 * 2 ** (rng.uniform(0, 24) / 12)
        phase = 2 * np.pi * pitch * (t + 0.3 * rng.uniform(-1, 1) * t**2)
        harmonics = np.sum([np.sin(k * phase) / k for k in range(1, 6)], axis=0)
        bursts = rng.standard_normal(t.shape[0]) * (np.sin(2 * np.pi * rng.uniform(1, 4) * t) > 0)
        source = 0.2 * harmonics + 0.1 * bursts
        delay = int(rng.integers(-margin, margin + 1))
        gain = 10 ** (rng.uniform(-12, 12) / 20)
        left = source[margin : margin + length]
        right = gain * source[margin - delay : margin - delay + length]
        stereo = np.stack([left, right], axis=1) / max(1.0, gain) * 0.8
        path = directory / f"panned_{i:03d}.wav"
        sf.write(path, stereo.astype(np.float32), sample_rate, subtype="FLOAT")
        paths.append(path)
    return paths


def _encoder_samples(block: np.ndarray, fmt: str) -> np.ndarray:
    """Float samples → the dtype an FFmpeg encoder's sample format ``fmt`` wants."""
    base = fmt.rstrip("p")
    if base in ("flt", "dbl"):
        return block.astype(np.float32 if base == "flt" else np.float64)
    bits = {"s16": 16, "s32": 32}[base]
    scale = 2.0 ** (bits - 1) - 1
    return np.round(np.clip(block, -1, 1) * scale).astype(np.int16 if bits == 16 else np.int32)


def encode_with_pyav(path: str | Path, x: np.ndarray, sample_rate: int, codec: str) -> Path:
    """Encode mono ``x`` ``(S,)`` with an FFmpeg ``codec`` (e.g. ``"aac"``, ``"libopus"``)."""
    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=sample_rate)
        if not isinstance(stream, av.AudioStream):
            raise ValueError(f"codec {codec!r} is not an audio codec")
        stream.layout = "mono"
        ctx = stream.codec_context
        ctx.open()  # sets frame_size and the encoder's sample format
        fmt = ctx.format.name
        size = ctx.frame_size or 1024
        pts = 0
        for start in range(0, x.shape[0], size):
            block = x[start : start + size]
            data = _encoder_samples(block, fmt)
            frame = av.AudioFrame.from_ndarray(data[None, :], format=fmt, layout="mono")
            frame.sample_rate = sample_rate
            frame.pts = pts
            frame.time_base = Fraction(1, sample_rate)
            pts += block.shape[0]
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


FORMAT_NAMES = ("wav", "flac", "vorbis", "opus", "mp3", "m4a", "webm")


def make_format_files(
    directory: str | Path, sample_rate: int = 16000, seconds: float = 1.0
) -> dict[str, Path]:
    """Write :func:`tone` ``(sample_rate, seconds)`` in every format; returns name → path.

    Names (:data:`FORMAT_NAMES`): ``wav`` (PCM_16), ``flac``, ``vorbis`` (``.ogg``), ``opus``
    (``.opus``, Ogg), ``mp3`` — written by soundfile — and ``m4a`` (AAC) and ``webm`` (Opus) —
    written by PyAV. Lossy files decode with codec padding: AAC rounds up to whole 1024-sample
    frames, and Opus in WebM always decodes at 48 kHz (FFmpeg's Opus decoder has no other rate).
    ``sample_rate`` must be one Opus and MP3 accept (8000, 16000, 24000, 48000 are safe).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    x = tone(sample_rate, seconds)
    out = {
        "wav": directory / "tone.wav",
        "flac": directory / "tone.flac",
        "vorbis": directory / "tone.ogg",
        "opus": directory / "tone.opus",
        "mp3": directory / "tone.mp3",
    }
    sf.write(out["wav"], x, sample_rate, subtype="PCM_16")
    sf.write(out["flac"], x, sample_rate, subtype="PCM_16")
    sf.write(out["vorbis"], x, sample_rate, format="OGG", subtype="VORBIS")
    sf.write(out["opus"], x, sample_rate, format="OGG", subtype="OPUS")
    sf.write(out["mp3"], x, sample_rate, format="MP3", subtype="MPEG_LAYER_III")
    out["m4a"] = encode_with_pyav(directory / "tone.m4a", x, sample_rate, "aac")
    out["webm"] = encode_with_pyav(directory / "tone.webm", x, sample_rate, "libopus")
    return out


def make_odd_files(directory: str | Path) -> dict[Path, str]:
    """Write :data:`ODD_FILE_COUNT` (20) awkward inputs; returns path → expected behaviour.

    Values starting with ``"valid"`` load fine (``"valid: 8 channels"`` mixes to mono,
    ``"valid: 192000 Hz"`` resamples). Every other value is a phrase that appears in the
    :class:`echoic.errors.AudioError` message raised by :func:`echoic.data.load_audio`, except
    ``"too short"``: those files load (1 sample) and fail
    ``require_min_samples(x, MIN_SAMPLES, path)``.

    Contents: 3 empty 0-byte wav, 3 wav cut inside the header, 2 float wav with NaN, 1 with inf,
    3 one-sample wav/flac, 2 text files named ``.wav``, 2 folders named ``.wav``, 8-channel 1-s
    wav + flac, 2 wav at 192 kHz.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out: dict[Path, str] = {}
    rate = 16000
    x = tone(rate, 0.25)

    for i in range(3):
        path = directory / f"empty_{i}.wav"
        path.write_bytes(b"")
        out[path] = "empty file"

    full = directory / "_full.wav"
    sf.write(full, x, rate, subtype="PCM_16")
    whole = full.read_bytes()
    full.unlink()
    for i, cut in enumerate((20, 12, 30)):  # all inside the 44-byte header
        path = directory / f"truncated_header_{i}.wav"
        path.write_bytes(whole[:cut])
        out[path] = "truncated or corrupt"

    for i, where in enumerate((0, 1000)):
        y = x.copy()
        y[where] = np.nan
        path = directory / f"nan_{i}.wav"
        sf.write(path, y, rate, subtype="FLOAT")
        out[path] = "NaN"
    y = x.copy()
    y[50] = np.inf
    path = directory / "inf_0.wav"
    sf.write(path, y, rate, subtype="FLOAT")
    out[path] = "inf"

    for name, subtype in (("one_sample_0.wav", "PCM_16"), ("one_sample_1.wav", "FLOAT")):
        path = directory / name
        sf.write(path, np.array([0.25], np.float32), rate, subtype=subtype)
        out[path] = "too short"
    path = directory / "one_sample_2.flac"
    sf.write(path, np.array([0.25], np.float32), rate, subtype="PCM_16")
    out[path] = "too short"

    texts = ("this is not audio\n" * 20, "file,label\na.wav,dog\nb.wav,cat\n")
    for i, text in enumerate(texts):
        path = directory / f"text_{i}.wav"
        path.write_text(text)
        out[path] = "not a recognised audio format"

    for i in range(2):
        path = directory / f"folder_{i}.wav"
        path.mkdir(exist_ok=True)
        out[path] = "is a directory"

    t = np.arange(rate) / rate
    multi = np.stack([0.1 * np.sin(2 * np.pi * 110 * (c + 1) * t) for c in range(8)], axis=1)
    for suffix in ("wav", "flac"):
        path = directory / f"eight_channels.{suffix}"
        sf.write(path, multi.astype(np.float32), rate, subtype="PCM_16")
        out[path] = "valid: 8 channels"

    for i, seconds in enumerate((1.0, 0.5)):
        path = directory / f"rate_192k_{i}.wav"
        sf.write(path, tone(192000, seconds, frequency=1000.0), 192000, subtype="PCM_24")
        out[path] = "valid: 192000 Hz"

    assert len(out) == ODD_FILE_COUNT, len(out)
    return out
