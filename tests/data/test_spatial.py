"""Physics of the spatial renderer (echoic.data.hrtf, echoic.data.spatial): which ear is louder and
earlier for a source on the left or right, first-order ambisonic gains of the direct sound, and
the RT60 of a rendered response measured by pyroomacoustics. Needs the ``spatial`` extra (see
pyproject.toml); skips without it unless ``ECHOIC_REQUIRE_SPATIAL=1``."""

from __future__ import annotations

import numpy as np
import pytest

FS = 16000
LISTENER = (3.0, 2.6, 1.5)


pytestmark = pytest.mark.usefixtures("spatial_extra")  # tests/conftest.py


def onset(x: np.ndarray) -> int:
    """First sample reaching 30 % of the peak magnitude."""
    return int(np.argmax(np.abs(x) >= 0.3 * np.max(np.abs(x))))


@pytest.mark.parametrize("name", ["mit_kemar", "sonicom_1", "sonicom_2"])
def test_hrtf_sets_put_azimuth_90_on_the_left(name: str) -> None:
    from echoic.data.hrtf import load_hrtf

    hrtf = load_hrtf(name)
    np.testing.assert_allclose(np.mean(np.sum(hrtf.irs**2, axis=-1), axis=0), [1.0, 1.0])
    for azimuth, near in ((90.0, 0), (270.0, 1)):
        index = hrtf.nearest(azimuth, 0.0)
        np.testing.assert_allclose(hrtf.directions_deg[index], [azimuth, 0.0])
        left_right = hrtf.irs[index]
        energy = np.sum(left_right**2, axis=-1)
        assert energy[near] > 4 * energy[1 - near]  # > 6 dB louder at the near ear
        assert onset(left_right[near]) < onset(left_right[1 - near])  # and earlier


@pytest.mark.parametrize("yaw", [0.0, 130.0])
def test_binaural_room_level_and_time_differences(yaw: float) -> None:
    from echoic.data.hrtf import load_hrtf
    from echoic.data.spatial import Placement, Room, room_impulse_response

    hrtf = load_hrtf("sonicom_1", FS)
    room = Room((6.5, 5.2, 3.0), 0.4)
    signs = {}
    for azimuth in (90.0, 270.0):
        placement = Placement(LISTENER, yaw, azimuth, 0.0, 1.5)
        assert np.all(placement.source_m() > 0) and np.all(placement.source_m() < room.size_m)
        left, right = room_impulse_response(room, placement, "binaural", FS, hrtf, seed=0)
        ild_db = 10 * np.log10(np.sum(left**2) / np.sum(right**2))  # whole response, reverb too
        itd = onset(right) - onset(left)  # samples by which the right ear lags
        signs[azimuth] = (ild_db, itd)
    assert signs[90.0][0] > 2.0 and signs[90.0][1] > 3  # left: louder and ~0.6 ms earlier
    assert signs[270.0][0] < -2.0 and signs[270.0][1] < -3


def test_free_field_binaural_and_foa() -> None:
    from echoic.data.hrtf import load_hrtf
    from echoic.data.spatial import free_field

    hrtf = load_hrtf("mit_kemar", FS)
    noise = np.random.default_rng(0).standard_normal(FS // 2)
    left, right = free_field(noise, "binaural", 90.0, 0.0, hrtf)
    assert np.sum(left**2) > 4 * np.sum(right**2)
    lags = np.arange(-20, 21)
    xcorr = [np.dot(left[20:-20], np.roll(right, -lag)[20:-20]) for lag in lags]
    assert lags[int(np.argmax(xcorr))] > 3  # the right ear hears the left source later
    w, y, z, x = free_field(noise, "foa", 45.0, 0.0)
    np.testing.assert_allclose([y / w, x / w], np.full((2, noise.size), np.sqrt(0.5)))
    np.testing.assert_allclose(z, 0.0, atol=1e-12)


@pytest.mark.parametrize("yaw", [0.0, 250.0])
@pytest.mark.parametrize(
    ("azimuth", "elevation", "expected"),  # W, Y, Z, X of ACN/SN3D, written out by hand
    [
        (0.0, 0.0, (1.0, 0.0, 0.0, 1.0)),
        (90.0, 0.0, (1.0, 1.0, 0.0, 0.0)),
        (180.0, 0.0, (1.0, 0.0, 0.0, -1.0)),
        (270.0, 30.0, (1.0, -np.cos(np.pi / 6), 0.5, 0.0)),
    ],
)
def test_foa_gains_of_the_direct_sound(yaw, azimuth, elevation, expected) -> None:
    from echoic.data.spatial import Placement, Room, room_impulse_response

    room = Room((7.0, 6.0, 3.5), 0.25)
    placement = Placement(LISTENER, yaw, azimuth, elevation, 1.0)
    rir = room_impulse_response(room, placement, "foa", FS, seed=0)
    peak = int(np.argmax(np.abs(rir[0])))
    direct = rir[:, peak] / rir[0, peak]
    np.testing.assert_allclose(direct, expected, atol=0.05)


@pytest.mark.parametrize("rt60", [0.3, 0.6, 1.0])
def test_rendered_rt60_is_the_requested_one(rt60: float) -> None:
    import pyroomacoustics as pra

    from echoic.data.hrtf import load_hrtf
    from echoic.data.spatial import Placement, Room, room_impulse_response

    room = Room((7.3, 5.1, 3.2), rt60)
    placement = Placement(LISTENER, 20.0, 200.0, 10.0, 2.0)
    hrtf = load_hrtf("mit_kemar", FS)
    for fmt in ("binaural", "foa"):
        rir = room_impulse_response(room, placement, fmt, FS, hrtf if fmt == "binaural" else None)
        for channel in rir[:2]:
            measured = pra.experimental.measure_rt60(channel, fs=FS, decay_db=30)
            assert measured == pytest.approx(rt60, rel=0.1), (fmt, measured)


def test_seeded_deterministic_and_diffuse_tail() -> None:
    from echoic.data.spatial import Placement, Room, room_impulse_response

    room = Room((7.3, 5.1, 3.2), 0.8)
    placement = Placement(LISTENER, 0.0, 30.0, 0.0, 2.0)
    a = room_impulse_response(room, placement, "foa", FS, seed=1)
    b = room_impulse_response(room, placement, "foa", FS, seed=1)
    c = room_impulse_response(room, placement, "foa", FS, seed=2)
    np.testing.assert_array_equal(a, b)
    early = round(0.03 * FS)  # the image-source part does not depend on the seed
    np.testing.assert_array_equal(a[:, :early], c[:, :early])
    assert not np.allclose(a[:, early * 5 :], c[:, early * 5 :])
    late = a[:, round(0.2 * FS) :]  # diffuse field: X, Y, Z each carry a third of W's energy
    energy = np.sum(late**2, axis=1)
    np.testing.assert_allclose(energy[1:] / energy[0], 1 / 3, rtol=0.2)


def test_sampled_rooms_and_placements_fit() -> None:
    from echoic.data.spatial import (
        PlacementRanges,
        sabine_absorption,
        sample_placement,
        sample_room,
    )

    rng = np.random.default_rng(0)
    ranges = PlacementRanges()
    for _ in range(50):
        room = sample_room(rng, (0.2, 1.2))
        assert 0.2 <= room.rt60_s <= 1.2 and sabine_absorption(room.size_m, room.rt60_s) <= 0.9
        p = sample_placement(rng, room, (80.0, 100.0))
        assert 80.0 <= p.azimuth_deg <= 100.0
        for point in (np.asarray(p.listener_m), p.source_m()):
            assert np.all(point >= ranges.wall_margin_m - 1e-9)
            assert np.all(point <= np.asarray(room.size_m) - ranges.wall_margin_m + 1e-9)
        assert np.linalg.norm(p.source_m() - p.listener_m) == pytest.approx(p.distance_m)
