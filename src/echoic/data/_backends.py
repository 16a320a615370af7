"""Decoding backends behind :mod:`echoic.data.audio`: soundfile (libsndfile) first, PyAV (FFmpeg) second.

Both readers yield float32 chunks shaped ``(C, n)`` (channels first) from a start frame, so the
loader and the streamer share one code path. Nothing here resamples or mixes channels.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

if TYPE_CHECKING:
    import av

from echoic.errors import AudioError

SOUNDFILE = "soundfile"
PYAV = "pyav"

# Go straight to PyAV: containers libsndfile cannot read, and MP3 (see SoundfileReader).
PYAV_FIRST_EXTENSIONS = frozenset({".m4a", ".mp4", ".webm", ".aac", ".mka", ".mp3"})

# (magic bytes at offset, offset, format name) used only to word error messages.
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"RIFF", 0, "WAV"),
    (b"RIFX", 0, "WAV"),
    (b"RF64", 0, "WAV (RF64)"),
    (b"fLaC", 0, "FLAC"),
    (b"OggS", 0, "Ogg"),
    (b"ID3", 0, "MP3"),
    (b"FORM", 0, "AIFF"),
    (b".snd", 0, "AU"),
    (b"caff", 0, "CAF"),
    (b"ftyp", 4, "MP4/M4A"),
    (b"\x1aE\xdf\xa3", 0, "Matroska/WebM"),
)

_FIX_UNREADABLE = (
    "check that the file is complete and really holds audio (e.g. `ffprobe FILE`); "
    "re-export or re-download it"
)


def check_path(path: str | os.PathLike[str]) -> Path:
    """Raise :class:`AudioError` unless ``path`` is an existing, readable, non-empty file."""
    p = Path(path)
    if not p.exists():
        raise AudioError(
            str(p), "no such file", "check the path (relative paths start at the current folder)"
        )
    if p.is_dir():
        raise AudioError(
            str(p),
            "is a directory, expected an audio file",
            "pass the files inside it, or the folder to a command that searches folders",
        )
    if not os.access(p, os.R_OK):
        raise AudioError(str(p), "not readable (permission denied)", "fix the file permissions")
    if p.stat().st_size == 0:
        raise AudioError(str(p), "empty file (0 bytes)", "the file was not written; recreate it")
    return p


def _sniff(path: Path) -> str:
    """Describe what the file's first bytes look like, for an error message."""
    with path.open("rb") as f:
        head = f.read(16)
    for magic, offset, name in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return (
                f"the file starts like a {name} file but its header or data is truncated or corrupt"
            )
    if head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2", b"\xff\xf1", b"\xff\xf9"):
        return "the file starts like an MP3/AAC stream but is truncated or corrupt"
    return f"the content is not a recognised audio format (it starts with {head!r})"


def _to_float32(frame: av.AudioFrame) -> np.ndarray:
    """``(C, n)`` float32 from a decoded PyAV frame of any sample format."""
    channels = frame.layout.nb_channels
    data = frame.to_ndarray()
    if not frame.format.is_planar:  # packed: (1, n * C) interleaved
        data = data.reshape(-1, channels).T
    name = frame.format.name.rstrip("p")
    if name in ("flt", "dbl"):
        return data.astype(np.float32, copy=False)
    if name == "u8":
        return (data.astype(np.float32) - 128.0) / 128.0
    scale = {"s16": 2.0**15, "s32": 2.0**31, "s64": 2.0**63}[name]
    return (data.astype(np.float64) / scale).astype(np.float32)


class SoundfileReader:
    """libsndfile reader (wav, flac, ogg vorbis/opus, aiff, au, ...); refuses MP3 (PyAV reads it)."""

    backend = SOUNDFILE

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = sf.SoundFile(str(path))
        if self._file.format == "MP3":
            # libsndfile 1.2's MP3 decoder returns wrong samples when read in pieces (seen with
            # sf.blocks and partial reads), so streams and offsets would differ from a full read.
            self._file.close()
            raise ValueError(
                "MP3 is left to PyAV (libsndfile's piecewise MP3 reads are unreliable)"
            )
        self.sample_rate = int(self._file.samplerate)
        self.channels = int(self._file.channels)
        self.frames: int | None = int(self._file.frames)  # from the header
        self.frames_exact = True
        self.failed_backends: list[str] = []

    def chunks(self, start: int, count: int | None, block: int) -> Iterator[np.ndarray]:
        """Yield ``(C, n)`` float32 chunks of at most ``block`` frames, from ``start`` on."""
        if start:
            if self.frames is not None and start >= self.frames:
                return
            self._file.seek(start)
        remaining = count
        while remaining is None or remaining > 0:
            n = block if remaining is None else min(block, remaining)
            data = self._file.read(frames=n, dtype="float32", always_2d=True)
            if data.shape[0] == 0:
                return
            if remaining is not None:
                remaining -= data.shape[0]
            yield data.T

    def close(self) -> None:
        self._file.close()


def _av() -> ModuleType:
    """PyAV, imported on first use: most audio never needs it, and its import costs ~0.3 s."""
    import av

    return av


class PyAVReader:
    """FFmpeg reader through PyAV (m4a/mp4/aac, webm/mka, and whatever libsndfile cannot open)."""

    backend = PYAV

    def __init__(self, path: Path) -> None:
        self.path = path
        self._container = _av().open(str(path))
        try:
            streams = self._container.streams.audio
            if not streams:
                kinds = sorted({s.type for s in self._container.streams}) or ["none"]
                raise ValueError(f"no audio stream (streams found: {', '.join(kinds)})")
            self._stream = streams[0]
            ctx = self._stream.codec_context
            self.sample_rate = int(ctx.sample_rate or self._stream.rate or 0)
            self.channels = int(ctx.channels)
            if self.sample_rate <= 0 or self.channels <= 0:
                raise ValueError(f"bad stream: {self.sample_rate} Hz, {self.channels} channels")
        except Exception:
            self._container.close()
            raise
        self.frames = self._estimate_frames()
        self.frames_exact = False
        self.failed_backends: list[str] = []

    def _estimate_frames(self) -> int | None:
        stream = self._stream
        if stream.duration is not None and stream.time_base is not None:
            return round(float(stream.duration * stream.time_base) * self.sample_rate)
        if self._container.duration is not None:
            return round(self._container.duration / _av().time_base * self.sample_rate)
        return None

    def _decoded(self) -> Iterator[np.ndarray]:
        av = _av()
        started = False
        try:
            for frame in self._container.decode(self._stream):
                data = _to_float32(frame)
                if data.shape[1] == 0:
                    continue
                if not started:  # the decoder, not the header, has the last word
                    self.sample_rate, self.channels = int(frame.sample_rate), data.shape[0]
                    started = True
                elif frame.sample_rate != self.sample_rate or data.shape[0] != self.channels:
                    raise AudioError(
                        str(self.path),
                        f"the stream changes from {self.sample_rate} Hz x {self.channels} channels "
                        f"to {frame.sample_rate} Hz x {data.shape[0]} mid-file",
                        "convert it to a fixed format first, e.g. `ffmpeg -i IN -ar 48000 OUT.wav`",
                    )
                yield data
        except av.error.FFmpegError as error:
            raise AudioError(
                str(self.path), f"decoding failed: {error}", _FIX_UNREADABLE
            ) from error

    def chunks(self, start: int, count: int | None, block: int) -> Iterator[np.ndarray]:
        """Yield ``(C, n)`` float32 chunks (at most ``block`` frames) covering ``[start, start+count)``.

        Decodes from the beginning and drops the first ``start`` frames: exact, but an offset costs
        decoding time (FFmpeg seeking is not sample-accurate).
        """
        position = 0
        end = None if count is None else start + count
        for data in self._decoded():
            n = data.shape[1]
            lo, hi = max(start - position, 0), n if end is None else min(n, end - position)
            position += n
            if hi > lo:
                piece = data[:, lo:hi]
                for i in range(0, piece.shape[1], block):
                    yield piece[:, i : i + block]
            if end is not None and position >= end:
                return

    def close(self) -> None:
        self._container.close()


Reader = SoundfileReader | PyAVReader


def open_reader(path: Path) -> Reader:
    """Open ``path`` with the first backend that accepts it, else raise :class:`AudioError`.

    Order: soundfile, then PyAV; containers soundfile cannot read (:data:`PYAV_FIRST_EXTENSIONS`)
    go to PyAV only. The error names every backend tried and why it refused.
    """
    order: tuple[type[SoundfileReader] | type[PyAVReader], ...] = (SoundfileReader, PyAVReader)
    if path.suffix.lower() in PYAV_FIRST_EXTENSIONS:
        order = (PyAVReader,)
    failures = []
    for cls in order:
        try:
            reader = cls(path)
        except Exception as error:  # every backend error means "this backend cannot read it"
            reason = str(error).replace(f"Error opening {str(path)!r}: ", "").strip()
            failures.append(f"{cls.backend}: {reason or type(error).__name__}")
            continue
        reader.failed_backends = failures
        return reader
    raise AudioError(
        str(path),
        f"cannot decode audio: {_sniff(path)} (tried {'; '.join(failures)})",
        _FIX_UNREADABLE,
    )


def no_samples_error(reader: Reader) -> AudioError:
    """The error for a file that opened but decoded to zero samples."""
    if reader.failed_backends:  # a fallback backend "opened" it: most likely not audio at all
        tried = "; ".join([*reader.failed_backends, f"{reader.backend}: decoded no samples"])
        return AudioError(
            str(reader.path),
            f"cannot decode audio: {_sniff(reader.path)} (tried {tried})",
            _FIX_UNREADABLE,
        )
    return AudioError(
        str(reader.path),
        f"zero-length audio: the {reader.backend} decoder found a valid header but 0 samples",
        "remove the file from the input list, or re-export it with its audio",
    )
