"""Room simulation as docs/data.md specifies it: pyroomacoustics' hybrid image-source and ray-tracing
model of a shoebox, 48 kHz, and the curves of its impulse response."""
from __future__ import annotations

import dataclasses

import numpy as np

from edc.acoustics.decay_curves import OCTAVE_BANDS_HZ, energy_decay_curve

SIM_FS = 48000  # Hz, the simulator's sampling rate
SPEED_OF_SOUND = 343.0  # m/s, pyroomacoustics' default
ISM_ORDER = 3  # image-source order of the hybrid model
SIMULATOR_BANDS_HZ = (*OCTAVE_BANDS_HZ, 16000)  # the 7 given bands and the one pyroomacoustics adds at 48 kHz
SURFACES = ("west", "east", "south", "north", "floor", "ceiling")  # x = 0 / L, y = 0 / W, z = 0 / H


@dataclasses.dataclass(frozen=True)
class Room:
    """A shoebox room as the simulator takes it: ``dimensions`` (L, W, H), ``source`` and ``receiver``
    (x, y, z) in m; ``absorption``: energy absorption at :data:`OCTAVE_BANDS_HZ`, one spectrum (7,) for
    every surface or one per surface (6, 7) in :data:`SURFACES` order; ``scattering``: (6, 7) likewise,
    or None for pyroomacoustics' default, 0 (specular)."""

    dimensions: tuple
    source: tuple
    receiver: tuple
    absorption: tuple
    scattering: tuple | None = None

    def surface_materials(self) -> tuple[np.ndarray, np.ndarray]:
        """``(absorption, scattering)``, each (6, 7): this room's coefficients per surface and band."""
        absorption = np.broadcast_to(np.asarray(self.absorption, np.float64), (len(SURFACES), len(OCTAVE_BANDS_HZ)))
        scattering = np.zeros_like(absorption) if self.scattering is None else \
            np.broadcast_to(np.asarray(self.scattering, np.float64), absorption.shape)
        return absorption, scattering


@dataclasses.dataclass(frozen=True)
class SimulationSettings:
    """48 kHz hybrid ISM (order 3) + ray tracing with air absorption (docs/data.md).

    ``edc_fs`` is the rate the EDC is stored at (sampled from the ``sim_fs`` curve),
    ``duration`` its length in s.
    """

    sim_fs: int = SIM_FS
    edc_fs: int = 1000
    duration: float = 2.0
    max_order: int = ISM_ORDER
    air_absorption: bool = True
    ray_tracing: bool = True
    ray_factor: float = 1.0  # rays traced, relative to pyroomacoustics' default count (about 20 V, V in m3)
    octave_bands: bool = True  # also the 7 octave-band EDCs (pyfar's filter bank)
    keep_rir: bool = False


def build_shoebox(room: Room, settings: SimulationSettings = SimulationSettings()):
    """The ``pyroomacoustics.ShoeBox`` of ``room`` with its source and microphone, not simulated."""
    import pyroomacoustics as pra

    bands = list(OCTAVE_BANDS_HZ)
    materials = {surface: pra.Material(energy_absorption={"coeffs": [float(x) for x in a], "center_freqs": bands},
                                       scattering={"coeffs": [float(x) for x in s], "center_freqs": bands})
                 for surface, a, s in zip(SURFACES, *room.surface_materials())}
    # one Material for all six surfaces and no scattering gives the same RIR, bit for bit (tests/test_surfaces.py)
    shoebox = pra.ShoeBox([float(x) for x in room.dimensions], fs=settings.sim_fs, materials=materials,
                          max_order=settings.max_order, air_absorption=settings.air_absorption,
                          ray_tracing=settings.ray_tracing)
    shoebox.add_source([float(x) for x in room.source])
    shoebox.add_microphone([float(x) for x in room.receiver])
    if settings.ray_tracing and settings.ray_factor != 1.0:  # the second ray set of the noise floor: int()
        shoebox.set_ray_tracing(n_rays=int(settings.ray_factor * shoebox.rt_args["n_rays"]))
    return shoebox


def simulate_room(room: Room, seed: int, settings: SimulationSettings = SimulationSettings()) -> dict:
    """Simulate one shoebox room and return its EDC (and band EDCs, RIR, as the settings ask).

    Args:
        room: the room (m; absorption at 125-8000 Hz).
        seed: ``pyroomacoustics.random.seed`` value (seeds numpy and the C++ ray tracer).

    Returns:
        ``{"edc": (duration*edc_fs,) float32, "band_edcs": (7, n) float32 (optional),
        "rir": (n_rir,) float32 (optional)}``.
    """
    import pyroomacoustics as pra

    pra.random.seed(int(seed))
    shoebox = build_shoebox(room, settings)
    shoebox.compute_rir()
    rir = np.asarray(shoebox.rir[0][0], dtype=np.float64)
    step = settings.sim_fs // settings.edc_fs
    out = {"edc": energy_decay_curve(rir, settings.sim_fs, settings.duration)[::step].astype(np.float32)}
    if settings.octave_bands:
        bands = energy_decay_curve(rir, settings.sim_fs, settings.duration, octave_bands=True)
        out["band_edcs"] = bands[:, ::step].astype(np.float32)
    if settings.keep_rir:
        out["rir"] = rir.astype(np.float32)
    return out
