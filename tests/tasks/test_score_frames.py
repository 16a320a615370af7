"""Animated score frames: as many frames as the snippet lasts times the frame rate, a cursor that
moves right with time from the first to the last inked column, drawn over paper only, and a follow
view that is the page around the cursor. Synthetic page images: no extra needed."""

from __future__ import annotations

import numpy as np
import pytest

from echoic.errors import ConfigError
from echoic.tasks.score_frames import (
    CursorConfig,
    cursor_columns,
    frame_count,
    frame_times,
    ink_span,
    render_frames,
)


def page(height: int = 40, width: int = 120, x0: int = 10, x1: int = 100) -> np.ndarray:
    """Paper with five 'staff lines' from column x0 to x1 and a few 'notes'."""
    image = np.full((height, width), 255, dtype=np.uint8)
    for row in range(10, 31, 5):
        image[row, x0 : x1 + 1] = 0
    for x in (20, 45, 70, 95):
        image[12:16, x : x + 3] = 30
    return image


@pytest.mark.parametrize(
    ("duration", "fps", "expected"), [(3.6, 4.0, 14), (4.8, 4.0, 19), (1.8, 8.0, 14), (0.1, 4, 1)]
)
def test_frame_count_is_duration_times_fps(duration: float, fps: float, expected: int) -> None:
    assert frame_count(duration, fps) == expected
    frames = render_frames(page(), duration, CursorConfig(fps=fps))
    assert frames.shape == (expected, 40, 120) and frames.dtype == np.uint8
    times = frame_times(duration, fps)
    assert times[0] == 0.0 and np.allclose(np.diff(times), 1 / fps)


def test_cursor_moves_right_with_time_across_the_inked_span() -> None:
    image = page(x0=10, x1=100)
    assert ink_span(image) == (10, 100, 10, 30)
    columns = cursor_columns(image, 4.8, 4.0)
    assert columns[0] == 10.0
    assert np.all(np.diff(columns) > 0)  # strictly monotone in time
    assert columns[-1] < 100.0  # the last frame shows a time before the end
    # linear: halfway through the snippet, halfway across the span
    assert cursor_columns(image, 4.0, 2.0)[4] == pytest.approx(55.0)


def cursor_of(frame: np.ndarray, image: np.ndarray) -> float:
    """Mean column where a frame differs from the page (the drawn cursor)."""
    changed = np.flatnonzero((frame != image).any(axis=0))
    return float(changed.mean())


def test_page_view_draws_the_cursor_over_paper_where_the_timing_puts_it() -> None:
    image = page()
    config = CursorConfig(fps=4.0, cursor_px=3, highlight=170)
    frames = render_frames(image, 3.0, config)
    drawn = [cursor_of(f, image) for f in frames]
    assert np.allclose(drawn, np.round(cursor_columns(image, 3.0, 4.0)), atol=0.5)
    for frame in frames:
        changed = frame != image
        assert np.all(image[changed] > 170) and np.all(frame[changed] == 170)  # paper only
        rows = np.flatnonzero(changed.any(axis=1))
        assert rows.min() >= 10 and rows.max() <= 30  # the system's height
        assert np.all(frame[image < 170] == image[image < 170])  # ink untouched


def test_follow_view_is_the_page_around_the_cursor() -> None:
    image = page()
    config = CursorConfig(fps=4.0, window_px=32)
    frames = render_frames(image, 3.0, config)
    plain = render_frames(image, 3.0, CursorConfig(fps=4.0))
    assert frames.shape == (12, 40, 32)
    for t, x in enumerate(np.round(cursor_columns(image, 3.0, 4.0)).astype(int)):
        padded = np.full((40, 120 + 64), 255, dtype=np.uint8)
        padded[:, 32:152] = plain[t]
        assert np.array_equal(frames[t], padded[:, x + 32 - 16 : x + 32 + 16])
    # the first window reaches past the page's left edge: blank paper there
    assert np.all(frames[0][:, :4] == 255)
    # the content under the window changes as the cursor moves
    assert not np.array_equal(frames[2], frames[8])


def test_bad_inputs_say_what_was_expected() -> None:
    with pytest.raises(ConfigError, match="uint8 grayscale"):
        render_frames(np.zeros((4, 4, 3), dtype=np.uint8), 1.0)
    with pytest.raises(ConfigError, match="fps"):
        CursorConfig(fps=0)
    with pytest.raises(ConfigError, match="must last"):
        frame_count(0.0, 4.0)
    with pytest.raises(ConfigError, match="window_px"):
        CursorConfig(window_px=0)
