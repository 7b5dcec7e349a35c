"""Room simulation per PROTOCOL.md (pyroomacoustics) and the built-in room sampler."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from edc.acoustics import OCTAVE_BANDS_HZ, energy_decay_curve
from edc.data import ABSORPTION, DIMENSIONS, FEATURES, RECEIVER, SOURCE


@dataclasses.dataclass(frozen=True)
class SimulationSettings:
    """PROTOCOL.md: 48 kHz hybrid ISM (order 3) + ray tracing with air absorption.

    ``edc_fs`` is the rate the EDC is stored at (sampled from the ``sim_fs`` curve),
    ``duration`` its length in s.
    """

    sim_fs: int = 48000
    edc_fs: int = 1000
    duration: float = 2.0
    max_order: int = 3
    air_absorption: bool = True
    ray_tracing: bool = True
    ray_factor: float = 1.0  # rays traced, relative to pyroomacoustics' default count (about 20 V, V in m3)
    octave_bands: bool = True  # also the 7 octave-band EDCs (PROTOCOL, pyfar's filter bank)
    keep_rir: bool = False


def build_shoebox(room: dict, settings: SimulationSettings = SimulationSettings()):
    """The ``pyroomacoustics.ShoeBox`` of ``room`` (16 feature names) with its source and microphone, not simulated."""
    import pyroomacoustics as pra

    material = pra.Material(energy_absorption={"coeffs": [float(room[c]) for c in ABSORPTION],
                                               "center_freqs": list(OCTAVE_BANDS_HZ)})
    shoebox = pra.ShoeBox([float(room[c]) for c in DIMENSIONS], fs=settings.sim_fs, materials=material,
                          max_order=settings.max_order, air_absorption=settings.air_absorption,
                          ray_tracing=settings.ray_tracing)
    shoebox.add_source([float(room[c]) for c in SOURCE])
    shoebox.add_microphone([float(room[c]) for c in RECEIVER])
    if settings.ray_tracing and settings.ray_factor != 1.0:
        shoebox.set_ray_tracing(n_rays=int(settings.ray_factor * shoebox.rt_args["n_rays"]))  # PROTOCOL: int()
    return shoebox


def simulate_room(room: dict, seed: int, settings: SimulationSettings = SimulationSettings()) -> dict:
    """Simulate one shoebox room and return its EDC (and optional band EDCs, RIR).

    Args:
        room: mapping with the 16 feature names (m; absorption f1..f7 at 125-8000 Hz).
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


# Octave-band (125 Hz - 8 kHz) absorption of typical room finishes, in the range of
# the paper's 30 cases; the sampler mixes them at random.
BASE_PROFILES = np.array([
    [0.19, 0.34, 0.55, 0.62, 0.62, 0.64, 0.60],  # porous absorber / curtains
    [0.29, 0.60, 0.85, 0.83, 0.69, 0.63, 0.30],  # suspended acoustic ceiling
    [0.27, 0.24, 0.22, 0.17, 0.09, 0.08, 0.02],  # wooden panelling (low-frequency)
    [0.09, 0.05, 0.04, 0.04, 0.03, 0.02, 0.02],  # painted concrete / plaster
    [0.12, 0.12, 0.12, 0.17, 0.16, 0.15, 0.02],  # linoleum on concrete
    [0.22, 0.34, 0.39, 0.41, 0.40, 0.40, 0.39],  # upholstered furniture
    [0.14, 0.27, 0.36, 0.30, 0.24, 0.24, 0.03],  # mixed office
    [0.18, 0.25, 0.26, 0.23, 0.22, 0.22, 0.21],  # carpet on pad
])


@dataclasses.dataclass
class SamplerRanges:
    """Ranges of the built-in sampler (defaults: the paper's rooms, continuous).

    Sources and receivers sit at ``position_height`` m, at least ``wall_margin`` m
    from the walls and ``min_distance`` m from each other.
    """

    length: tuple = (3.0, 4.0)
    width: tuple = (3.0, 6.0)
    height: tuple = (2.5, 4.0)
    position_height: float = 1.5
    wall_margin: float = 1.0
    min_distance: float = 1.0
    absorption: tuple = (0.01, 0.85)
    profile_concentration: float = 0.5


def sample_rooms(n_rooms: int, seed: int = 0, ranges: SamplerRanges = SamplerRanges(),
                 profiles: np.ndarray | None = None) -> pd.DataFrame:
    """Draw ``n_rooms`` shoebox rooms: a features table (``ID`` + 16 columns).

    Absorption is a Dirichlet mixture of ``profiles`` (default :data:`BASE_PROFILES`),
    clipped to ``ranges.absorption``.
    """
    rng = np.random.default_rng(seed)
    profiles = BASE_PROFILES if profiles is None else np.asarray(profiles, dtype=np.float64)
    rows = []
    for i in range(n_rooms):
        dims = np.array([rng.uniform(*ranges.length), rng.uniform(*ranges.width), rng.uniform(*ranges.height)])
        source, receiver = _positions(rng, dims, ranges)
        weights = rng.dirichlet(np.full(len(profiles), ranges.profile_concentration))
        alpha = np.clip(weights @ profiles, *ranges.absorption)
        rows.append([f"room_{i:05d}", *np.round(dims, 3), *np.round(source, 3), *np.round(receiver, 3),
                     *np.round(alpha, 3)])
    return pd.DataFrame(rows, columns=["ID"] + FEATURES)


def _positions(rng, dims, ranges: SamplerRanges):
    lo, hi = ranges.wall_margin, dims[:2] - ranges.wall_margin
    if (hi <= lo).any():
        raise ValueError(f"a {dims[0]:.2f} x {dims[1]:.2f} m room is too small for wall_margin {ranges.wall_margin} m")
    for _ in range(1000):
        source, receiver = rng.uniform(lo, hi), rng.uniform(lo, hi)
        if np.linalg.norm(source - receiver) >= ranges.min_distance:
            z = [ranges.position_height]
            return np.concatenate([source, z]), np.concatenate([receiver, z])
    raise ValueError(f"cannot place source and receiver {ranges.min_distance} m apart in a "
                     f"{dims[0]:.2f} x {dims[1]:.2f} m room with wall_margin {ranges.wall_margin} m")
