"""Waveform + spectrogram thumbnails (PNG) of a row's audio, rendered with NumPy and Pillow.

The image is ``width × (wave_height + spec_height)`` pixels: on top the waveform envelope (the
min and max sample of each column), below a log-magnitude spectrogram (Hann-windowed STFT, 0 Hz
at the bottom, the top 80 dB of the clip in the ``magma`` colour map).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

BACKGROUND = (250, 250, 250)
WAVE = (40, 90, 160)
DYNAMIC_RANGE_DB = 80.0


def _magma() -> np.ndarray:
    """``(256, 3)`` uint8: matplotlib's ``magma`` colour map."""
    from matplotlib import colormaps

    table = colormaps["magma"](np.linspace(0.0, 1.0, 256))[:, :3]
    return np.asarray(np.round(table * 255), np.uint8)


_LUT: np.ndarray | None = None


def _lut() -> np.ndarray:
    global _LUT
    if _LUT is None:
        _LUT = _magma()
    return _LUT


def _waveform(x: np.ndarray, width: int, height: int) -> np.ndarray:
    image = np.empty((height, width, 3), np.uint8)
    image[:] = BACKGROUND
    if x.size == 0:
        return image
    edges = np.linspace(0, x.size, width + 1).astype(np.int64)
    peak = float(np.max(np.abs(x))) or 1.0
    middle = (height - 1) / 2
    for col in range(width):
        lo, hi = edges[col], max(edges[col + 1], edges[col] + 1)
        part = x[lo:hi]
        if part.size == 0:
            continue
        top = round(middle - float(part.max()) / peak * middle)
        bottom = round(middle - float(part.min()) / peak * middle)
        image[max(0, top) : min(height, bottom + 1), col] = WAVE
    return image


def _spectrogram(x: np.ndarray, sample_rate: int, width: int, height: int) -> np.ndarray:
    n_fft = 512 if sample_rate >= 16000 else 256
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    hop = max(1, (x.size - n_fft) // max(1, width - 1))
    starts = np.arange(0, x.size - n_fft + 1, hop)[: width * 4]
    frames = x[starts[:, None] + np.arange(n_fft)[None, :]] * np.hanning(n_fft)[None, :]
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (frames, bins)
    db = 10.0 * np.log10(power + 1e-12)
    db = np.clip(db - db.max() + DYNAMIC_RANGE_DB, 0.0, DYNAMIC_RANGE_DB) / DYNAMIC_RANGE_DB
    codes = np.asarray(np.round(db.T[::-1] * 255), np.uint8)  # (bins, frames), 0 Hz at the bottom
    small = Image.fromarray(codes).resize((width, height), Image.Resampling.BILINEAR)
    return _lut()[np.asarray(small)]


def render_thumbnail(
    x: np.ndarray, sample_rate: int, width: int = 240, wave_height: int = 28, spec_height: int = 52
) -> bytes:
    """PNG bytes of the thumbnail of mono samples ``x`` ``(S,)`` at ``sample_rate``."""
    x = np.nan_to_num(np.asarray(x, np.float32).reshape(-1))
    top = _waveform(x, width, wave_height)
    bottom = _spectrogram(x, sample_rate, width, spec_height)
    buffer = io.BytesIO()
    Image.fromarray(np.concatenate([top, bottom], axis=0)).save(buffer, format="PNG")
    return buffer.getvalue()
