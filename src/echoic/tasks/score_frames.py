"""Animated score frames: a snippet's engraving with a cursor that moves in time with its audio.

No real video can be had offline, so the video–music methods (:mod:`echoic.objectives.video_music`)
are tested on the one honest visual–audio pairing here: a ``sheet_snippets`` image
(:mod:`echoic.tasks.sheet_snippets`) turned into a short frame sequence in which a cursor crosses
the notes while the snippet's clip plays.

* Timing: ``T = max(1, round(duration_s × fps))`` frames (:func:`frame_count`); frame ``t`` shows
  the score at ``t / fps`` seconds (:func:`frame_times`).
* Cursor: **linear across the engraved span**, not note by note: ``x(t) = x₀ + (x₁ − x₀) ·
  t / duration_s``, with ``x₀`` / ``x₁`` the first and last image columns holding ink (the
  system's left edge and its final barline). The snippet is played at a fixed tempo
  (:data:`~echoic.tasks.sheet_audio.SECONDS_PER_QUARTER`), so this is where the music is up to
  the uneven spacing of engraving (wide notes, the clef and key signature at the start) — the
  images carry no per-note x positions; verovio's timemap does, but would have to be re-engraved.
* Drawing (:func:`render_frames`): the cursor is a band of ``cursor_px`` columns in which paper
  (pixels lighter than ``highlight``) is darkened to ``highlight`` gray over the system's height,
  ink left as it is, so the notes under it stay readable. ``window_px=None`` gives the *page view*
  (the whole image every frame); ``window_px=W`` the *follow view*: a ``W``-pixel-wide camera
  window centred on the cursor (blank paper beyond the page's edges), so each frame shows the
  music being played — the frame content, not only the cursor, changes over time.

Frames are ``(T, H, W)`` uint8 grayscale, 255 = paper, as the page images are; any
:mod:`echoic.vision` tower embeds them frame by frame
(:func:`echoic.objectives.video_music.visual_stream`). Pure numpy: no extra is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from echoic.errors import ConfigError

__all__ = [
    "CursorConfig",
    "cursor_columns",
    "frame_count",
    "frame_times",
    "ink_span",
    "render_frames",
]

INK_BELOW = 200
"""Gray values below this count as ink when finding the engraved span."""


@dataclass(frozen=True)
class CursorConfig:
    """How a snippet becomes frames (module docstring)."""

    fps: float = 4.0
    window_px: int | None = None
    cursor_px: int = 3
    highlight: int = 170

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise ConfigError(f"fps must be > 0; found {self.fps}.")
        if self.window_px is not None and self.window_px < 1:
            raise ConfigError(
                f"window_px must be None (page view) or >= 1 pixel; found {self.window_px}."
            )
        if self.cursor_px < 1 or not 0 <= self.highlight <= 255:
            raise ConfigError(
                f"expected cursor_px >= 1 and 0 <= highlight <= 255; found {self.cursor_px}, "
                f"{self.highlight}."
            )


def frame_count(duration_s: float, fps: float) -> int:
    """``max(1, round(duration_s × fps))`` frames."""
    if not duration_s > 0:
        raise ConfigError(f"a snippet must last > 0 s; found {duration_s}.")
    return max(1, round(duration_s * fps))


def frame_times(duration_s: float, fps: float) -> np.ndarray:
    """``(T,)`` seconds shown by each frame: ``t / fps``."""
    return np.arange(frame_count(duration_s, fps), dtype=np.float64) / fps


def ink_span(image: np.ndarray) -> tuple[int, int, int, int]:
    """``(x₀, x₁, y₀, y₁)``: first and last columns and rows holding ink (inclusive) of an
    ``(h, w)`` uint8 image; a blank image spans all of it."""
    _check_image(image)
    ink = image < INK_BELOW
    columns, rows = np.flatnonzero(ink.any(axis=0)), np.flatnonzero(ink.any(axis=1))
    if columns.size == 0:
        return 0, image.shape[1] - 1, 0, image.shape[0] - 1
    return int(columns[0]), int(columns[-1]), int(rows[0]), int(rows[-1])


def cursor_columns(image: np.ndarray, duration_s: float, fps: float) -> np.ndarray:
    """``(T,)`` float column of the cursor in each frame (module docstring: linear in time)."""
    x0, x1, _, _ = ink_span(image)
    return x0 + (x1 - x0) * frame_times(duration_s, fps) / duration_s


def render_frames(
    image: np.ndarray, duration_s: float, config: CursorConfig | None = None
) -> np.ndarray:
    """``(T, H, W)`` uint8 frames of an ``(H, w)`` uint8 page image: ``W = w`` in the page view,
    ``window_px`` in the follow view (module docstring)."""
    config = config or CursorConfig()
    _check_image(image)
    _, _, y0, y1 = ink_span(image)
    columns = cursor_columns(image, duration_s, config.fps)
    height, width = image.shape
    half = config.cursor_px // 2
    if config.window_px is None:
        frames = np.repeat(image[None], len(columns), axis=0)
        left = np.zeros(len(columns), dtype=np.int64)
    else:
        # pad with paper so that every window lies inside the padded page
        pad = config.window_px
        page = np.full((height, width + 2 * pad), 255, dtype=np.uint8)
        page[:, pad : pad + width] = image
        left = np.round(columns).astype(np.int64) + pad - config.window_px // 2
        frames = np.stack([page[:, a : a + config.window_px] for a in left])
        left = left - pad  # page column of each frame's column 0
    for t, x in enumerate(np.round(columns).astype(np.int64)):
        a = max(0, x - half - left[t])
        b = min(frames.shape[2], x - half + config.cursor_px - left[t])
        if a < b:
            band = frames[t, y0 : y1 + 1, a:b]
            np.minimum(band, config.highlight, out=band)
    return frames


def _check_image(image: np.ndarray) -> None:
    if image.ndim != 2 or image.dtype != np.uint8 or 0 in image.shape:
        raise ConfigError(
            f"expected an (h, w) uint8 grayscale page image; found {image.dtype} of shape "
            f"{image.shape}. Read it as sheet_pairs does: np.asarray(Image.open(p).convert('L'))."
        )
