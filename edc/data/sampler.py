"""The built-in room sampler: shoebox rooms in the paper's ranges, continuous, with absorption
spectra mixed from typical room finishes."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from edc.data.schema import FEATURES

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


@dataclasses.dataclass
class RoomsRanges:
    """Ranges of the realistic-rooms sampler (``sampler=rooms``; docs/data.md, "Samplers").

    Offices to small halls: ``length`` x ``width`` x ``height`` m within ``volume`` m^3 (log-uniform); source and
    receiver at ``heights`` m (a loudspeaker on a table, a seated or standing listener), ``wall_margin``
    m from every surface and ``min_distance`` m apart. Each surface takes, with probability
    ``database_share``, a material of pyroomacoustics' database with its spectrum perturbed by
    ``exp(N(0, perturbation))`` per band, otherwise a random smooth spectrum (log-uniform up to a bound drawn
    per room, so that bare rooms are as common as treated ones). Scattering is a smooth spectrum rising
    with frequency, from ``scattering[0]`` up to a level drawn per room, log-uniform in ``scattering_level``
    (so that rooms of flat, bare surfaces, whose data sheets give about 0.1, are as common as furnished
    ones that scatter 0.5 and more). Materials are redrawn while any band's Eyring
    reverberation time exceeds ``max_t`` s (bare halls; the stored curves must reach -35 dB). Each
    geometry (dimensions and positions) comes with ``material_sets`` sets of materials, one row each.
    """

    length: tuple = (3.0, 15.0)
    width: tuple = (3.0, 12.0)
    height: tuple = (2.5, 6.0)
    volume: tuple = (20.0, 600.0)
    heights: tuple = (0.5, 2.0)
    wall_margin: float = 0.5
    min_distance: float = 1.0
    database_share: float = 0.5
    perturbation: float = 0.2
    absorption: tuple = (0.01, 1.0)
    scattering: tuple = (0.0, 1.0)
    scattering_level: tuple = (0.05, 1.0)
    max_t: float = 6.0
    material_sets: int = 1


def sample_surface_rooms(n_rooms: int, seed: int = 0, ranges: RoomsRanges = RoomsRanges(),
                         materials: np.ndarray | None = None) -> pd.DataFrame:
    """Draw ``n_rooms`` rooms with a material and scattering per surface: a surfaces-layout table
    (``ID`` + :data:`edc.data.schema.SURFACE_FEATURES`). ``materials``: absorption spectra ``(m, 7)``
    to draw from (default: pyroomacoustics' database)."""
    from edc.data.materials import database
    from edc.data.schema import SURFACE_FEATURES

    rng = np.random.default_rng(seed)
    spectra = np.array([m.absorption for m in database().values()]) if materials is None else np.asarray(materials)
    rows = []
    for i in range(n_rooms):
        if i % ranges.material_sets == 0:  # a new geometry, then its material sets
            dims = _dimensions(rng, ranges)
            source, receiver = _positions_3d(rng, dims, ranges)
        for _ in range(1000):
            top = np.exp(rng.uniform(np.log(ranges.absorption[0] * 5), np.log(ranges.absorption[1])))  # room's liveness
            absorption = np.stack([_absorption_spectrum(rng, spectra, ranges, top) for _ in range(6)])
            if eyring_times(dims, absorption).max() <= ranges.max_t:
                break
        else:
            raise ValueError(f"no materials keep a {np.prod(dims):.0f} m3 room below max_t={ranges.max_t} s")
        level = np.exp(rng.uniform(*np.log(ranges.scattering_level)))  # the room's, as `top` is for absorption
        level = np.clip(level, *ranges.scattering)
        scattering = np.stack([_smooth(rng, ranges.scattering[0], level, rising=True) for _ in range(6)])
        materials_of_room = np.concatenate([absorption, scattering], axis=1).ravel()  # per surface: a then s
        rows.append([f"room_{i:05d}", *np.round(dims, 3), *np.round(source, 3), *np.round(receiver, 3),
                     *np.round(materials_of_room, 3)])
    table = pd.DataFrame(rows, columns=["ID"] + SURFACE_FEATURES)
    absorption_columns = [c for c in SURFACE_FEATURES if "_a" in c]
    table[absorption_columns] = table[absorption_columns].clip(lower=ranges.absorption[0])  # rounding kept > 0
    return table


def eyring_times(dims, absorption: np.ndarray) -> np.ndarray:
    """Eyring's reverberation time (s) per band, ``(7,)``, of an ``L x W x H`` m room with ``absorption``
    ``(6, 7)`` per surface (west, east, south, north, floor, ceiling): the physics model's
    (:func:`edc.acoustics.room.reverberation_time`, area-weighted mean absorption, with air)."""
    import torch

    from edc.acoustics.room import reverberation_time

    per_surface = np.concatenate([absorption, np.zeros_like(absorption)], axis=1).ravel()  # scattering plays no part
    features = np.concatenate([dims, np.zeros(6), per_surface])  # positions play no part either
    return reverberation_time(torch.as_tensor(features, dtype=torch.float64), "eyring")[:7].numpy()


def _dimensions(rng, ranges: RoomsRanges) -> np.ndarray:
    """``(L, W, H)`` m: volume log-uniform in ``ranges.volume`` (as many offices as halls), height
    uniform, floor aspect L/W log-uniform in [1, 3]; redrawn until every side is in its range."""
    for _ in range(10000):
        volume, height = np.exp(rng.uniform(*np.log(ranges.volume))), rng.uniform(*ranges.height)
        aspect = np.exp(rng.uniform(0.0, np.log(3.0)))
        length, width = np.sqrt(volume / height * aspect), np.sqrt(volume / height / aspect)
        if ranges.length[0] <= length <= ranges.length[1] and ranges.width[0] <= width <= ranges.width[1]:
            return np.array([length, width, height])
    raise ValueError(f"no room of length {ranges.length}, width {ranges.width} and height {ranges.height} m has a "
                     f"volume in {ranges.volume} m3")


def _positions_3d(rng, dims, ranges: RoomsRanges):
    low = np.array([ranges.wall_margin, ranges.wall_margin, max(ranges.heights[0], ranges.wall_margin)])
    high = np.array([dims[0] - ranges.wall_margin, dims[1] - ranges.wall_margin,
                     min(ranges.heights[1], dims[2] - ranges.wall_margin)])
    if (high <= low).any():
        raise ValueError(f"a {dims[0]:.2f} x {dims[1]:.2f} x {dims[2]:.2f} m room leaves no place for a source "
                         f"{ranges.wall_margin} m from the surfaces at heights {ranges.heights} m")
    for _ in range(1000):
        source, receiver = rng.uniform(low, high), rng.uniform(low, high)
        if np.linalg.norm(source - receiver) >= ranges.min_distance:
            return source, receiver
    raise ValueError(f"cannot place source and receiver {ranges.min_distance} m apart in a "
                     f"{dims[0]:.2f} x {dims[1]:.2f} x {dims[2]:.2f} m room")


def _absorption_spectrum(rng, spectra: np.ndarray, ranges: RoomsRanges, top: float) -> np.ndarray:
    """A database spectrum, perturbed, or a random smooth one, log-uniform up to ``top`` (drawn per room,
    so that bare rooms are as likely as treated ones); clipped to ``ranges.absorption``."""
    if rng.uniform() < ranges.database_share:
        spectrum = spectra[rng.integers(len(spectra))] * np.exp(rng.normal(0.0, ranges.perturbation, 7))
    else:
        spectrum = np.exp(_smooth(rng, np.log(ranges.absorption[0]), np.log(top)))
    return np.clip(spectrum, *ranges.absorption)


def _smooth(rng, low: float, high: float, rising: bool = False) -> np.ndarray:
    """A smooth spectrum over the 7 octave bands: values at 125 Hz, 1 kHz and 8 kHz drawn in
    ``[low, high]`` (sorted upwards where ``rising``), joined linearly in log frequency."""
    knots = rng.uniform(low, high, 3)
    knots = np.sort(knots) if rising else knots
    return np.interp(np.arange(7), [0, 3, 6], knots)
