"""Spatial audio from mono sources: binaural (measured HRTFs) and first-order ambisonics (FOA) in
simulated shoebox rooms, seeded and deterministic.

Why here (``echoic.data``): the evaluation tasks (``echoic.tasks``) render with it today, and a
spatial pretraining pipeline (simulated reverberant multichannel scenes from the pretraining
corpus, for ``train``/``objectives``) needs the same renderer; ``data`` is the lowest layer both
can import, and the renderer needs nothing from the layers above (numpy, scipy, soxr, and the
``spatial`` extra: pyroomacoustics, plus slab / h5py for the HRTFs of :mod:`echoic.data.hrtf`).

Room model (:func:`room_impulse_response`), a hybrid of exact early reflections and a statistical
late tail, the usual split of room-acoustics renderers (e.g. gpuRIR's diffuse model):

* Room: a shoebox of the given size whose walls share one frequency-independent energy
  absorption, from Sabine's formula for the requested RT60 (``pyroomacoustics.inverse_sabine``).
  No air absorption.
* Early part: the image-source method of pyroomacoustics up to reflection order ``early_order``
  (default 6, 377 images), every image rendered through the response of *its own* direction at the
  listener: for binaural, the HRIR of the nearest measured direction (pyroomacoustics'
  ``MeasuredDirectivity``, with fractional delays); for FOA, the SN3D gains (an omnidirectional
  W and three figure-eights Y, Z, X: pyroomacoustics' ``FigureEight``). It is kept up to ``t0``, the
  first arrival of an order-``early_order`` image: before ``t0`` every reflection is present.
* Late part, from ``t0``: the image-source method to full order costs seconds to minutes per
  response and pyroomacoustics' ray tracer is not seeded (two runs differ) and cannot take an HRTF,
  so the tail is a diffuse field: ``diffuse_directions`` (32) independent Gaussian noises arriving
  from directions spread evenly over the sphere (a Fibonacci lattice), each rendered through the
  format's response of its direction (HRIRs: the interaural coherence of a diffuse field on that
  head; FOA: W, Y, Z, X energies 1, 1/3, 1/3, 1/3), with a power envelope falling 60 dB per RT60.
  Its level at ``t0`` is fitted to the omnidirectional early response between the direct sound
  and ``t0``; it lasts until it has decayed by ``tail_decay_db``.

HRIRs are diffuse-field normalised (:mod:`echoic.data.hrtf`), so direct sound, reflections and
tail keep the energy ratios of an omnidirectional microphone in the same room.

Coordinates: room metres, x/y the floor, z up. Listener yaw ``ψ`` (degrees counter-clockwise from
+x) is where the listener faces; a source's azimuth is measured from there, 90 = the listener's left
(the SOFA / ambisonics convention), elevation up from the horizontal plane. FOA channels are in ACN
order W, Y, Z, X with SN3D normalisation (first order: W = 1, Y = cos(el) sin(az), Z = sin(el),
X = cos(el) cos(az)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.signal import fftconvolve

from echoic.data.hrtf import SPATIAL_EXTRA_HINT, HRTFSet, SpatialDependencyError, direction_vectors

FORMATS = ("binaural", "foa")
CHANNELS = {"binaural": ("left", "right"), "foa": ("W", "Y", "Z", "X")}
"""Channel names of each format, in file order."""


@dataclass(frozen=True)
class Room:
    """A shoebox room: ``size_m`` (x, y, z) and the RT60 its wall absorption is chosen for."""

    size_m: tuple[float, float, float]
    rt60_s: float


@dataclass(frozen=True)
class Placement:
    """Listener and source in a room: the source's direction and distance are listener-relative."""

    listener_m: tuple[float, float, float]
    yaw_deg: float
    azimuth_deg: float
    elevation_deg: float
    distance_m: float

    def room_direction(self) -> np.ndarray:
        """``(3,)`` unit vector from listener to source in room coordinates."""
        v = direction_vectors(np.array([self.azimuth_deg]), np.array([self.elevation_deg]))[0]
        return rotate_yaw(v, self.yaw_deg)

    def source_m(self) -> np.ndarray:
        """``(3,)`` source position in the room."""
        return np.asarray(self.listener_m) + self.distance_m * self.room_direction()


@dataclass(frozen=True)
class RoomRanges:
    """Uniform ranges that :func:`sample_room` draws from (metres, seconds)."""

    length_m: tuple[float, float] = (3.0, 10.0)
    width_m: tuple[float, float] = (3.0, 8.0)
    height_m: tuple[float, float] = (2.5, 4.0)
    max_absorption: float = 0.9


@dataclass(frozen=True)
class PlacementRanges:
    """Uniform ranges that :func:`sample_placement` draws from (degrees, metres)."""

    elevation_deg: tuple[float, float] = (-20.0, 30.0)
    distance_m: tuple[float, float] = (1.0, 3.0)
    listener_height_m: tuple[float, float] = (1.2, 1.8)
    wall_margin_m: float = 0.5


@dataclass(frozen=True)
class RenderConfig:
    """How :func:`room_impulse_response` splits exact early reflections and the diffuse tail."""

    early_order: int = 6
    diffuse_directions: int = 32
    tail_decay_db: float = 60.0


def rotate_yaw(v: np.ndarray, yaw_deg: float) -> np.ndarray:
    """``(..., 3)`` vectors rotated counter-clockwise by ``yaw_deg`` about the vertical axis."""
    c, s = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return np.asarray(v) @ rot.T


def sabine_absorption(size_m: tuple[float, float, float], rt60_s: float, c: float = 343.0) -> float:
    """Wall energy absorption giving ``rt60_s`` by Sabine's formula (as pyroomacoustics')."""
    x, y, z = size_m
    volume, surface = x * y * z, 2 * (x * y + y * z + x * z)
    return 24.0 * np.log(10.0) * volume / (c * surface * rt60_s)


def sample_room(
    rng: np.random.Generator, rt60_range_s: tuple[float, float], ranges: RoomRanges = RoomRanges()
) -> Room:
    """A random room with RT60 uniform in ``rt60_range_s`` whose absorption is physical (redraws
    the size while Sabine's absorption would exceed ``ranges.max_absorption``)."""
    for _ in range(1000):
        size = (
            round(float(rng.uniform(*ranges.length_m)), 3),
            round(float(rng.uniform(*ranges.width_m)), 3),
            round(float(rng.uniform(*ranges.height_m)), 3),
        )
        rt60 = round(float(rng.uniform(*rt60_range_s)), 4)
        if sabine_absorption(size, rt60) <= ranges.max_absorption:
            return Room(size, rt60)
    raise ValueError(f"no room of {ranges} reaches RT60 in {rt60_range_s} s; widen the ranges")


def sample_placement(
    rng: np.random.Generator,
    room: Room,
    azimuth_range_deg: tuple[float, float] = (0.0, 360.0),
    ranges: PlacementRanges = PlacementRanges(),
) -> Placement:
    """A random listener (position, yaw) and a source at a direction drawn uniformly in the given
    azimuth range (and ``ranges``), both at least ``wall_margin_m`` from every surface."""
    lo = np.full(3, ranges.wall_margin_m)
    hi = np.asarray(room.size_m) - ranges.wall_margin_m
    if np.any(hi <= lo):
        raise ValueError(f"room {room.size_m} is too small for a wall margin of {lo[0]} m")
    for _ in range(10000):
        listener = np.array(
            [
                rng.uniform(lo[0], hi[0]),
                rng.uniform(lo[1], hi[1]),
                rng.uniform(*ranges.listener_height_m),
            ]
        )
        x, y, z = (round(float(v), 4) for v in listener)
        placement = Placement(
            listener_m=(x, y, z),
            yaw_deg=round(float(rng.uniform(0.0, 360.0)), 3),
            azimuth_deg=round(float(np.mod(rng.uniform(*azimuth_range_deg), 360.0)), 3),
            elevation_deg=round(float(rng.uniform(*ranges.elevation_deg)), 3),
            distance_m=round(float(rng.uniform(*ranges.distance_m)), 4),
        )
        source = placement.source_m()
        if np.all(source >= lo) and np.all(source <= hi) and np.all(listener <= hi):
            return placement
    raise ValueError(f"no placement fits room {room.size_m} with {ranges}; widen the ranges")


def foa_gains(azimuth_deg: np.ndarray, elevation_deg: np.ndarray) -> np.ndarray:
    """``(N,)`` listener-frame directions → ``(N, 4)`` first-order ACN/SN3D gains (W, Y, Z, X)."""
    v = direction_vectors(np.asarray(azimuth_deg, float), np.asarray(elevation_deg, float))
    return np.column_stack([np.ones(len(v)), v[:, 1], v[:, 2], v[:, 0]])


def fibonacci_directions(n: int) -> np.ndarray:
    """``(n, 3)`` unit vectors spread evenly over the sphere (golden-angle spiral)."""
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    phi = np.pi * (1.0 + np.sqrt(5.0)) * i
    r = np.sqrt(1.0 - z**2)
    return np.column_stack([r * np.cos(phi), r * np.sin(phi), z])


def import_pyroomacoustics() -> Any:
    """The pyroomacoustics module, or :class:`SpatialDependencyError` saying how to install it."""
    try:
        import pyroomacoustics
    except ImportError as err:
        raise SpatialDependencyError(
            f"cannot import pyroomacoustics ({err}); {SPATIAL_EXTRA_HINT}"
        ) from err
    return pyroomacoustics


_MEASURED: dict[tuple[str, int, int], Any] = {}


def _hrtf_directivity(hrtf: HRTFSet, ear: int, yaw_deg: float) -> Any:
    """pyroomacoustics' ``MeasuredDirectivity`` of one ear, facing ``yaw_deg`` (built once per set
    and rate: its octave-band energies take ~0.4 s)."""
    pra = import_pyroomacoustics()
    from pyroomacoustics.directivities import MeasuredDirectivity, Rotation3D

    key = (hrtf.name, hrtf.sample_rate, ear)
    if key not in _MEASURED:
        grid = pra.doa.GridSphere(cartesian_points=hrtf.unit_vectors().T)
        _MEASURED[key] = MeasuredDirectivity(
            Rotation3D([0.0], "z", degrees=True), grid, hrtf.irs[:, ear], hrtf.sample_rate
        )
    directivity = _MEASURED[key]
    directivity.set_orientation(Rotation3D([yaw_deg], "z", degrees=True))
    return directivity


def _directivities(fmt: str, yaw_deg: float, hrtf: HRTFSet | None) -> list[Any]:
    """One directivity per output channel, then ``None`` (an omnidirectional reference)."""
    if fmt == "binaural":
        if hrtf is None:
            raise ValueError(
                "binaural rendering needs an HRTF set; pass hrtf=load_hrtf(name, rate)"
            )
        return [_hrtf_directivity(hrtf, 0, yaw_deg), _hrtf_directivity(hrtf, 1, yaw_deg), None]
    if fmt == "foa":
        from pyroomacoustics.directivities import DirectionVector, FigureEight

        def axis(azimuth: float, colatitude: float) -> Any:
            return FigureEight(DirectionVector(azimuth, colatitude, degrees=True))

        # W is the omnidirectional reference itself (last), Y left, Z up, X front.
        return [axis(yaw_deg + 90.0, 90.0), axis(0.0, 0.0), axis(yaw_deg, 90.0), None]
    raise ValueError(f"unknown spatial format {fmt!r}; expected one of {FORMATS}")


def room_impulse_response(
    room: Room,
    placement: Placement,
    fmt: str,
    sample_rate: int,
    hrtf: HRTFSet | None = None,
    seed: int | np.random.SeedSequence = 0,
    config: RenderConfig = RenderConfig(),
) -> np.ndarray:
    """``(C, n)`` float64 impulse responses from the source to the listener's ``fmt`` channels
    (:data:`CHANNELS`), see the module docstring. ``hrtf`` (binaural only) must be at
    ``sample_rate`` (:func:`echoic.data.hrtf.load_hrtf`); ``seed`` draws the diffuse tail."""
    pra = import_pyroomacoustics()
    if hrtf is not None and hrtf.sample_rate != sample_rate:
        raise ValueError(
            f"HRTF set {hrtf.name} is at {hrtf.sample_rate} Hz; expected {sample_rate} Hz "
            f"(load_hrtf(name, {sample_rate}))"
        )
    absorption, _ = pra.inverse_sabine(room.rt60_s, list(room.size_m))
    shoebox = pra.ShoeBox(
        list(room.size_m),
        fs=sample_rate,
        materials=pra.Material(float(absorption)),
        max_order=config.early_order,
        air_absorption=False,
    )
    shoebox.add_source(placement.source_m())
    directivities = _directivities(fmt, placement.yaw_deg, hrtf)
    listener = np.asarray(placement.listener_m, dtype=np.float64)
    mics = np.repeat(listener[:, None], len(directivities), axis=1)
    shoebox.add_microphone_array(mics, directivity=directivities)
    shoebox.compute_rir()
    responses = [np.asarray(shoebox.rir[m][0], dtype=np.float64) for m in range(len(directivities))]
    omni = responses[-1]
    early = responses[:-1] if fmt == "binaural" else [omni, *responses[:-1]]

    # t0: the first order-K arrival; the pyroomacoustics delay filters add fdl // 2 samples.
    source = shoebox.sources[0]
    dist = np.linalg.norm(source.images - listener[:, None], axis=0)
    offset = pra.constants.get("frac_delay_length") // 2
    to_sample = sample_rate / shoebox.c
    t0 = int(np.floor(dist[source.orders == config.early_order].min() * to_sample)) + offset
    direct = int(np.round(dist[source.orders == 0].min() * to_sample)) + offset
    decay = 6.0 * np.log(10.0) / (room.rt60_s * sample_rate)  # power: -60 dB per RT60
    fit_start = min(max((direct + t0) // 2, direct + round(0.0025 * sample_rate)), t0 - 1)
    window = np.arange(fit_start, t0)
    power = float(np.sum(np.pad(omni, (0, max(0, t0 - omni.size)))[window] ** 2))
    amplitude = np.sqrt(power / float(np.sum(np.exp(-decay * (window - t0)))))

    n_tail = round(config.tail_decay_db / 60.0 * room.rt60_s * sample_rate)
    envelope = amplitude * np.exp(-0.5 * decay * np.arange(n_tail))
    rng = np.random.default_rng(seed)
    m = config.diffuse_directions
    noise = rng.standard_normal((m, n_tail)) * (envelope / np.sqrt(m))
    vectors = fibonacci_directions(m)
    if fmt == "binaural":
        assert hrtf is not None
        nearest = np.argmax(vectors @ hrtf.unit_vectors().T, axis=1)
        tail = fftconvolve(noise[:, None, :], hrtf.irs[nearest], axes=-1).sum(axis=0)
    else:
        az = np.degrees(np.arctan2(vectors[:, 1], vectors[:, 0]))
        el = np.degrees(np.arcsin(np.clip(vectors[:, 2], -1.0, 1.0)))
        tail = foa_gains(az, el).T @ noise
    out = np.zeros((len(early), t0 + tail.shape[1]))
    for c, response in enumerate(early):
        n = min(response.size, t0)
        out[c, :n] = response[:n]
    out[:, t0:] += tail
    return out


def spatialise(mono: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``(S,)`` source through ``(C, n)`` impulse responses → ``(C, S)`` float64 (the first ``S``
    samples of the convolution: what a recording started with the source would hold)."""
    x = np.asarray(mono, dtype=np.float64)
    return fftconvolve(x[None, :], rir, axes=-1)[:, : x.shape[0]]


def free_field(
    mono: np.ndarray,
    fmt: str,
    azimuth_deg: float,
    elevation_deg: float,
    hrtf: HRTFSet | None = None,
) -> np.ndarray:
    """``(S,)`` → ``(C, S)``: an anechoic source at a listener-relative direction (binaural: the
    HRIR of the nearest measured direction, at ``hrtf``'s rate; FOA: the SN3D gains)."""
    x = np.asarray(mono, dtype=np.float64)
    if fmt == "foa":
        return foa_gains(np.array([azimuth_deg]), np.array([elevation_deg]))[0][:, None] * x
    if fmt != "binaural" or hrtf is None:
        raise ValueError(
            f"free_field: expected fmt 'foa', or 'binaural' with an HRTF set; got {fmt!r}"
        )
    ir = hrtf.irs[hrtf.nearest(azimuth_deg, elevation_deg)]
    return fftconvolve(x[None, :], ir, axes=-1)[:, : x.shape[0]]


def measure_rt60(response: np.ndarray, sample_rate: int, decay_db: float = 30.0) -> float:
    """RT60 of a ``(n,)`` impulse response by pyroomacoustics (Schroeder integral, the T30 fit
    extrapolated to 60 dB by default)."""
    pra = import_pyroomacoustics()
    return float(
        pra.experimental.measure_rt60(np.asarray(response), sample_rate, decay_db=decay_db)
    )
